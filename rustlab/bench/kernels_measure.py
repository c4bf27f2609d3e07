"""What `rustlab bench kernels` measures per configuration: cost and receptive field
(``analyse``), latency (``measure_latency``: a forward pass, and the trainer's own ``TrainStep``,
timed by ``timing.timed_round``) and quality (``train_quality``: the real ``rustlab.training.trainer.train``).
benchmarks/test_kernels.py calls ``measure_latency`` too."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import statistics
import time

from rustlab.bench.kernels_data import (
    MAX_STEPS,
    TRAIN_BATCH,
    Analysis,
    ERFSummary,
    KernelConfig,
    Latency,
    Quality,
)
from rustlab.bench.timing import is_contended, sync_for, timed_round
from rustlab.errors import RustlabError


def smoke_config(model: str) -> dict:
    """The plugin's own tiny config (``ModelSpec.smoke_config``) less its input size, which the
    sweep sets itself (``--image-size``): what ``--quick`` builds."""
    from rustlab.registry import get_model_spec

    return {k: v for k, v in get_model_spec(model).smoke_config.items() if k != "image_size"}


def model_knobs(model: str) -> set[str]:
    """Which of kernel_size / stride / pool / image_size the model's config has."""
    from rustlab.registry import get_model_spec

    fields = {f.name for f in dataclasses.fields(get_model_spec(model).config_cls)}
    return fields & {"kernel_size", "stride", "pool", "image_size"}


def erf_summary(model, shape, n_samples: int) -> ERFSummary:
    from rustlab.analysis import effective_rf

    erf = effective_rf(model, shape, n_samples=n_samples)
    if not erf.std:  # all-zero gradient: nothing to measure (mass_inside is NaN, not JSON)
        return ERFSummary((), (0, 0), None, n_samples)
    return ERFSummary(tuple(round(s, 3) for s in erf.std), tuple(erf.extent), round(erf.mass_inside, 6), n_samples)


def input_shape(model, image_size: int, batch: int = 1) -> tuple:
    channels = int(getattr(getattr(model, "config", None), "in_channels", 3))
    return (batch, channels, image_size, image_size)


def analyse(model_name: str, config: KernelConfig, image_size: int, base_overrides: dict | None = None,
            erf_samples: int = 16) -> Analysis:
    """Cost, stage shapes and receptive fields of one configuration (random init, seed 0).

    Raises RuntimeError from torch when the feature map collapses (e.g. s2+pool at a small size)."""
    import torch

    from rustlab.analysis import model_cost, stage_shapes, theoretical_rf
    from rustlab.registry import create_model

    torch.manual_seed(0)
    model = create_model(model_name, base_overrides, **_with_size(model_name, config.overrides(), image_size))
    shape = input_shape(model, image_size)
    cost = model_cost(model, shape)
    if cost.macs != cost.counted_macs:
        # Two independent counts disagree: a layer the formulas do not know (or a bug). Every
        # MAC number of the study would be suspect, so stop rather than report one of them.
        raise RustlabError(f"{config.label}: MACs from the layer formulas ({cost.macs:,}) differ from those "
                           f"counted by torch.utils.flop_counter ({cost.counted_macs:,})")
    rf = theoretical_rf(model, shape)
    # A training step keeps every layer's output and its gradient: a lower bound on its memory.
    activations = sum(math.prod(row.output_shape[1:]) for row in cost.layers if row.output_shape)
    return Analysis(
        params=cost.params,
        macs=cost.macs,
        counted_macs=cost.counted_macs,
        stages=[{"name": s.name, "type": s.type, "shape": list(s.shape[1:])} for s in stage_shapes(model, shape)],
        rf=rf.rf[0],
        rf_jump=rf.jump[0],
        final_map=tuple(rf.output_shape[1:]),
        erf_init=erf_summary(model, shape, erf_samples),
        train_memory_bytes=activations * TRAIN_BATCH * 4 * 2,
    )


def _with_size(model_name: str, overrides: dict, image_size: int) -> dict:
    return {**overrides, "image_size": image_size} if "image_size" in model_knobs(model_name) else dict(overrides)


def available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def measure_latency(model_name: str, model_config: dict, what: str, batch: int, channels_last: bool = False,
                    steps: int = 10, warmup: int = 3, image_size: int = 32,
                    device: str = "cpu", max_rounds: int = 1, min_round_seconds: float = 0.0) -> Latency:
    """Time one configuration's forward (eval, inference mode, random input) or the trainer's
    training step (``rustlab.training.TrainStep`` with ``make_optimizer``, on a random uint8
    batch) through ``timing.timed_round``.

    ``model_config`` is the full config override (kernel_size, stride, pool, widths, ...).
    When other processes kept more than ``timing.CONTENDED_CORES`` cores busy during a round, it
    is timed again, up to ``max_rounds`` rounds; the least disturbed round is kept and its
    ``others_cores`` reported, so a disturbed number is flagged rather than passed off as clean.
    ``steps`` is raised (up to MAX_STEPS) so that a round lasts ``min_round_seconds``, judged by
    the warm-up; the steps actually timed are in the result."""
    import torch

    from rustlab.config import TrainConfig
    from rustlab.device import resolve_device
    from rustlab.registry import get_model_spec, get_task
    from rustlab.training import (
        TrainStep,
        build_model,
        input_preprocessing,
        make_grad_scaler,
        make_optimizer,
    )

    if what not in ("forward", "train"):
        raise ValueError(f"what must be 'forward' or 'train', not {what!r}")
    dev = resolve_device(device)
    spec = get_model_spec(model_name)
    task = get_task(spec.task)
    model, config = build_model(spec, task, ["no_rust", "rust"], image_size, model_config, device=dev, seed=0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    sync = sync_for(dev)
    if what == "forward":
        model.eval()
        x = torch.randn(input_shape(model, image_size, batch), device=dev).contiguous(memory_format=fmt)

        def step(inputs):
            with torch.inference_mode():
                model(inputs)
            return len(inputs)

    else:
        model.train()
        cfg = TrainConfig(epochs=1)
        x = torch.randint(0, 256, (batch, 3, image_size, image_size), dtype=torch.uint8, device=dev)
        if task.target == "mask":
            y = (torch.rand(batch, 1, image_size, image_size, device=dev) > 0.7).float()
        else:
            y = torch.randint(0, int(getattr(config, "num_classes", 2)), (batch,), device=dev)
        # one-cycle over more steps than can run: its per-step cost is the same, and it never runs out
        optimizer, scheduler = make_optimizer(model, cfg, (max(steps, MAX_STEPS) + warmup + 1) * (max_rounds + 1))
        train_step = TrainStep(model, task, optimizer, scheduler, dev, input_preprocessing(config, image_size),
                               amp=cfg.amp, label_smoothing=cfg.label_smoothing,
                               scaler=make_grad_scaler(dev, cfg.amp), channels_last=channels_last)

        def step(inputs):
            train_step(inputs, y)
            return len(inputs)

    round_warmup = warmup
    if min_round_seconds > 0:
        probe, _ = timed_round(step, itertools.repeat(x), 1, warmup, sync)  # the warm-up, and one step to size the round
        steps = min(MAX_STEPS, max(steps, math.ceil(min_round_seconds / max(probe.seconds, 1e-6))))
        round_warmup = 0  # already warm
    rounds = []
    for _ in range(max(1, max_rounds)):
        timing, others = timed_round(step, itertools.repeat(x), steps, round_warmup, sync)
        rounds.append((others if others is not None else 0.0, statistics.median(timing.durations), timing, others))
        if not is_contended(others):
            break
    _, _, timing, others = min(rounds, key=lambda r: (r[0], r[1]))
    ms = sorted(1000 * d for d in timing.durations)
    q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else (ms[0], ms[0], ms[0])
    return Latency(what, batch, channels_last, round(statistics.median(ms), 4), round(q1, 4), round(q3, 4),
                   round(ms[0], 4), steps, warmup, others, len(rounds))


def epochs_for_seconds(seconds: float, train_step_ms: float, train_images: int, batch: int = TRAIN_BATCH) -> int:
    """Epochs whose training steps take about ``seconds``, from the measured batch-32 step.

    A seconds budget gives every configuration the same compute time (a slow configuration gets
    fewer epochs) while each run still finishes its learning-rate schedule, which stopping a run
    on a timer would not. Data loading and validation are not counted."""
    steps_per_epoch = max(1, train_images // batch) if train_images > batch else 1
    return max(1, round(seconds / (train_step_ms / 1000 * steps_per_epoch)))


def train_quality(model_name: str, model_config: dict, data: str, image_size: int, epochs: int, seeds,
                  runs_dir, name: str, device: str = "cpu", progress=None):
    """Train one configuration once per seed with the real trainer; returns the metrics and the
    first seed's best model (for the trained ERF). Run folders are deleted once read: a run's
    checkpoints and resumable state take megabytes, and the study needs only its numbers."""
    import shutil

    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.config import TrainConfig
    from rustlab.errors import Interrupted
    from rustlab.registry import get_model_spec, get_task
    from rustlab.training.trainer import train

    task = get_task(get_model_spec(model_name).task)
    quality = Quality(task.monitor, epochs, [], [], [], [])
    first = None
    for seed in seeds:
        if progress is not None:
            progress(f"seed {seed}")
        cfg = TrainConfig(model=model_name, data=data, epochs=epochs, batch_size=TRAIN_BATCH, image_size=image_size,
                          seed=seed, device=device, out=str(runs_dir), name=f"{name}-seed{seed}",
                          model_config=dict(model_config), patience=epochs)  # no early stop inside the budget
        start = time.perf_counter()
        try:
            result = train(cfg, log=lambda *_: None)
        except Interrupted as exc:
            raise Interrupted("interrupted; no results written (the bench does not resume)", exc.exit_code) from None
        quality.train_seconds.append(round(time.perf_counter() - start, 2))
        quality.seeds.append(seed)
        quality.val.append(float(result.best_metrics.get(task.monitor, 0.0)))
        if result.test_metrics and task.monitor in result.test_metrics:
            quality.test.append(float(result.test_metrics[task.monitor]))
        quality.history.append(result.history)
        if first is None:
            first, _ = build_model_from_checkpoint(result.run_dir / "best.safetensors")
        shutil.rmtree(result.run_dir, ignore_errors=True)
    return quality, first


def train_split_size(data: str, model_name: str) -> int:
    """Training images the trainer will see (its split, seed 0). Also fails fast on bad --data."""
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.registry import get_model_spec, get_task

    source = load_source(data, needs_masks=get_task(get_model_spec(model_name).task).requires_masks)
    return len(assign_splits(source, seed=0)["train"])

