"""What kernel size and stride cost and buy: the measurements behind `rustlab bench kernels`.

The seed's reflection: "a small kernel sees more details, a bigger kernel captures global
features but is more expensive; a small stride also captures more details but requires higher
computation". This module turns it into numbers, one configuration (kernel size x
downsampling) at a time, at one fixed input size:

- cost: parameters and multiply-accumulates per image, from the layer formulas AND counted by
  torch's FlopCounterMode (``rustlab.analysis.model_cost``; the two must agree or the run
  stops), and the output shape of every stage;
- receptive field: theoretical (``theoretical_rf``) and effective, from input gradients of the
  centre unit (``effective_rf``), at initialisation and after training;
- latency: forward at batch 1 and the trainer's training step (``TrainStep``) at batch 32,
  contiguous and channels_last, warm-up then timed iterations, median and quartiles, through
  ``timing.timed_round``, the one timing loop of `rustlab bench`, with the cores other
  processes used meanwhile (benchmarks/test_kernels.py calls ``measure_latency`` too);
- quality: the real trainer (``rustlab.training.trainer.train``) on ``--data`` for the same budget per
  configuration, over several seeds; validation and test metric, mean and std.

Downsampling schemes of the CNN (``stride`` x ``pool``): ``s1+pool`` (the seed: stride-1 conv,
then 2x2 max pool), ``s2`` (stride-2 conv, no pool: a quarter of the conv positions),
``s1`` (no downsampling at all: the most expensive), ``s2+pool`` (4x per stage). Models whose
config has only ``kernel_size`` (the UNet, whose downsampling is fixed) sweep kernels only.

This module resolves the sweep and drives it; ``kernels_measure`` measures one configuration,
``kernels_data`` holds the records and ``kernels_report`` writes results.json/.csv/.md and the plots.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import tempfile
import time

from rustlab.bench.kernels_data import (
    DEFAULT_EPOCHS,
    DEFAULT_IMAGE_SIZE,
    DEFAULT_KERNELS,
    DEFAULT_POOLS,
    DEFAULT_SEEDS,
    DEFAULT_STRIDES,
    FORWARD_BATCH,
    MEMORY_SHARE,
    QUICK_DATA,
    TRAIN_BATCH,
    ConfigResult,
    KernelConfig,
    KernelReport,
    LatencySettings,
    SweepError,
)
from rustlab.bench.kernels_measure import (
    analyse,
    available_memory,
    epochs_for_seconds,
    erf_summary,
    input_shape,
    measure_latency,
    model_knobs,
    smoke_config,
    train_quality,
    train_split_size,
)
from rustlab.bench.kernels_report import config_line, plural
from rustlab.bench.timing import CpuMeter, load_average, machine_info
from rustlab.errors import RustlabError


def resolve_sweep(model: str, kernels=None, strides=None, pools=None, image_size: int = DEFAULT_IMAGE_SIZE,
                  base_overrides: dict | None = None) -> list[KernelConfig]:
    """The configurations to run, in order (kernel, then stride, then pool); raises SweepError
    for a list the model cannot take (unknown model, a knob it lacks, a value its config refuses)."""
    from rustlab.registry import get_model_spec, get_registry

    if model not in get_registry().models:
        raise SweepError("--model", f"unknown model {model!r}; registered: {', '.join(sorted(get_registry().models))}")
    knobs = model_knobs(model)
    if "kernel_size" not in knobs:
        raise SweepError("--model", f"model {model!r} has no kernel_size to sweep")
    kernels = tuple(kernels or DEFAULT_KERNELS)
    for flag, values, knob, default in (("--strides", strides, "stride", DEFAULT_STRIDES),
                                        ("--pool", pools, "pool", DEFAULT_POOLS)):
        if values is not None and knob not in knobs:
            raise SweepError(flag, f"model {model!r} has no {knob!r} knob (its downsampling is fixed); "
                                   "leave the flag out")
    strides = tuple(strides or (DEFAULT_STRIDES if "stride" in knobs else (None,)))
    pools = tuple(pools if pools is not None else (DEFAULT_POOLS if "pool" in knobs else (None,)))
    for flag, values in (("--kernels", kernels), ("--strides", strides), ("--pool", pools)):
        if len(set(values)) != len(values):
            raise SweepError(flag, "a value is given twice")
    spec = get_model_spec(model)
    try:
        spec.make_config(base_overrides)
    except RustlabError as exc:
        raise SweepError("--set", str(exc)) from None
    size = {"image_size": image_size} if "image_size" in knobs else {}
    configs = [KernelConfig(k, s, p) for k, s, p in itertools.product(kernels, strides, pools)]
    for flag, values, make in (("--kernels", kernels, lambda v: {"kernel_size": v}),
                               ("--strides", strides, lambda v: {"stride": v} if v is not None else {}),
                               ("--image-size", (image_size,), lambda v: size)):
        for v in values:
            try:
                spec.make_config(base_overrides, **make(v))
            except RustlabError as exc:
                raise SweepError(flag, f"{v}: {exc}") from None
    return configs


def run_kernels(model: str = "cnn", kernels=None, strides=None, pools=None, data: str | None = None,
                epochs: int | None = None, seconds: float | None = None, seeds: int | None = None,
                image_size: int | None = None, quick: bool = False, device: str = "cpu",
                latency: LatencySettings | None = None, erf_samples: int | None = None,
                model_overrides: dict | None = None, log=None) -> KernelReport:
    """Measure every configuration of the sweep; see the module docstring."""
    import torch

    from rustlab.config import TrainConfig
    from rustlab.registry import get_model_spec, get_registry

    log = log or (lambda message: None)
    if epochs is not None and seconds is not None:
        raise SweepError("--seconds", "give either --epochs or --seconds, not both")
    base = smoke_config(model) if quick and model in get_registry().models else {}
    base.update(model_overrides or {})
    image_size = int(image_size or DEFAULT_IMAGE_SIZE)
    configs = resolve_sweep(model, kernels, strides, pools, image_size, base)
    data = data or (QUICK_DATA if quick else "builtin")
    seeds = list(range(int(seeds or (1 if quick else DEFAULT_SEEDS))))
    if seconds is None and epochs is None:
        epochs = 1 if quick else DEFAULT_EPOCHS
    latency = latency or (LatencySettings(2, 2, 1, 1, 0.0) if quick else LatencySettings())
    erf_samples = int(erf_samples or (2 if quick else 16))
    task_name = get_model_spec(model).task
    train_images = train_split_size(data, model)
    start, meter = time.perf_counter(), CpuMeter()
    report = KernelReport(machine_info(device), {
        "model": model, "task": task_name, "data": data, "train_images": train_images, "image_size": image_size,
        "epochs": epochs, "seconds_budget": seconds, "seeds": seeds, "train_batch": TRAIN_BATCH,
        "forward_batch": FORWARD_BATCH, "augment": TrainConfig().augment, "latency": dataclasses.asdict(latency),
        "erf_samples": erf_samples, "model_overrides": base, "quick": quick, "device": device,
        "torch_threads": torch.get_num_threads()})
    budget = plural(epochs, "epoch") if epochs else f"{seconds:g} s of training steps"
    log(f"{len(configs)} configurations of {model} at {image_size}px; quality: {budget} x "
        f"{plural(len(seeds), 'seed')} on {data} ({train_images} training images)")
    memory = available_memory()
    show_bar = sys.stderr.isatty()
    with tempfile.TemporaryDirectory(prefix="rustlab-kernels-") as runs_dir:
        from tqdm import tqdm

        bar = tqdm(configs, desc="kernels", unit="config", disable=not show_bar, file=sys.stderr)
        say = (lambda m: bar.write(m, file=sys.stderr)) if show_bar else log
        for index, config in enumerate(bar, 1):
            def phase(text, config=config):
                bar.set_postfix_str(f"{config.label}: {text}")

            result = ConfigResult(config, {**base, **config.overrides()})
            report.results.append(result)
            phase("cost and receptive field")
            try:
                result.analysis = analyse(model, config, image_size, base, erf_samples)
            except RuntimeError as exc:  # torch: the map shrinks to nothing before the last stage
                result.skipped = f"does not fit {image_size}px input: {str(exc).splitlines()[0]}"
                say(f"[{index}/{len(configs)}] {config.label}: skipped, {result.skipped}")
                continue
            a = result.analysis
            if memory is not None and a.train_memory_bytes > MEMORY_SHARE * memory:
                result.skipped = (f"a batch-{TRAIN_BATCH} training step needs about "
                                  f"{a.train_memory_bytes / 2**30:.1f} GiB, more than half the free memory")
                say(f"[{index}/{len(configs)}] {config.label}: skipped, {result.skipped}")
                continue
            phase("latency")
            for what, batch, steps in (("forward", FORWARD_BATCH, latency.forward_steps),
                                       ("train", TRAIN_BATCH, latency.train_steps)):
                for channels_last in (False, True):
                    result.latency.append(measure_latency(model, result.model_config, what, batch, channels_last,
                                                          steps, latency.warmup, image_size, device,
                                                          latency.max_rounds, latency.min_round_seconds))
            n_epochs = epochs or epochs_for_seconds(seconds, result.latency_of("train", False).median_ms,
                                                    train_images)
            result.quality, trained = train_quality(model, result.model_config, data, image_size, n_epochs, seeds,
                                                    runs_dir, config.slug, device, progress=phase)
            result.erf_trained = erf_summary(trained, input_shape(trained, image_size), erf_samples)
            say(f"[{index}/{len(configs)}] {config_line(result)}")
        bar.close()
    report.machine["load_average_after"] = load_average()
    report.seconds = time.perf_counter() - start
    # how quiet the machine was: the total time holds only where others took little CPU
    report.machine["others_cores_during_run"] = meter.others_cores()
    return report
