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
- latency: forward at batch 1 and a training step at batch 32, contiguous and channels_last,
  warm-up then timed iterations, median and quartiles, through ``speed.time_loop``, the one
  timing loop of `rustlab bench` (benchmarks/test_kernels.py calls ``measure_latency`` too);
- quality: the real trainer (``rustlab.train.train``) on ``--data`` for the same budget per
  configuration, over several seeds; validation and test metric, mean and std.

Downsampling schemes of the CNN (``stride`` x ``pool``): ``s1+pool`` (the seed: stride-1 conv,
then 2x2 max pool), ``s2`` (stride-2 conv, no pool: a quarter of the conv positions),
``s1`` (no downsampling at all: the most expensive), ``s2+pool`` (4x per stage). Models whose
config has only ``kernel_size`` (the UNet, whose downsampling is fixed) sweep kernels only.

The outputs (results.json/.csv/.md and the plots) are written by ``rustlab.bench.kernels_report``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

from rustlab.errors import RustlabError

DEFAULT_KERNELS = (3, 5, 7)
DEFAULT_STRIDES = (1, 2)
DEFAULT_POOLS = (True, False)
# The seed's input size (its flatten was 128*4*4 at 32x32). It also keeps the stride-1,
# no-pool configurations, which convolve every layer at full resolution, affordable on a CPU.
DEFAULT_IMAGE_SIZE = 32
# Sized so that the default sweep (9 CNN configurations x 3 seeds) on corrosion-cls
# (932 training images) finishes within 15 minutes on 2 CPU cores: 9.4 min measured with 4
# epochs (7.6 with 3), stride 1 without pooling taking three quarters of it; see experiments/kernels.
DEFAULT_EPOCHS = 4
DEFAULT_SEEDS = 3
TRAIN_BATCH = 32  # the trainer's default batch: the latency of its step is what training costs
FORWARD_BATCH = 1  # one photo at a time, as the Predictor and the GUI see it
# --quick: narrow models, one seed, one epoch, tiny data. A smoke run: its numbers mean nothing.
QUICK_MODELS = {
    "cnn": {"widths": (8, 16, 16), "hidden": 32},
    "unet": {"base_width": 4, "depth": 2},
}
QUICK_DATA = "builtin:48"
# The budget a training step may use: a batch-32 step's activations (and their gradients) must
# fit in this share of the available memory, or the configuration is skipped, not swapped.
MEMORY_SHARE = 0.5


class SweepError(RustlabError):
    """A sweep list that cannot be run (``param``: the flag at fault); the CLI shows a usage error."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


# --- the sweep ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelConfig:
    """One point of the sweep. ``stride`` / ``pool`` are None for models without those knobs."""

    kernel: int
    stride: int | None = None
    pool: bool | None = None

    @property
    def scheme(self) -> str:
        """The downsampling scheme: s1+pool (the seed's), s2, s1, s2+pool; '' when not swept."""
        if self.stride is None and self.pool is None:
            return ""
        return f"s{self.stride if self.stride is not None else 1}" + ("+pool" if self.pool else "")

    @property
    def label(self) -> str:
        return f"k{self.kernel}" + (f"/{self.scheme}" if self.scheme else "")

    @property
    def slug(self) -> str:
        return self.label.replace("/", "-").replace("+", "-")

    def overrides(self) -> dict:
        out = {"kernel_size": self.kernel}
        if self.stride is not None:
            out["stride"] = self.stride
        if self.pool is not None:
            out["pool"] = self.pool
        return out


def model_knobs(model: str) -> set[str]:
    """Which of kernel_size / stride / pool the model's config has."""
    from rustlab.registry import get_model_spec

    fields = {f.name for f in dataclasses.fields(get_model_spec(model).config_cls)}
    return fields & {"kernel_size", "stride", "pool", "image_size"}


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


# --- cost and receptive field ------------------------------------------------------------------------


@dataclass
class ERFSummary:
    """The effective RF of the centre unit (``rustlab.analysis.effective_rf``), per axis (H, W):
    ``std`` is the spread of the |grad| mass in pixels, ``extent`` the box above 1% of the peak,
    ``mass_inside`` the share inside the theoretical window (1.0 when both are right).

    When no gradient reaches the input (the centre unit is inactive, its ReLUs dead, on every
    sample: seen after training), ``std`` is empty and ``sigma`` / ``mass_inside`` are None."""

    std: tuple
    extent: tuple
    mass_inside: float | None
    n_samples: int

    @property
    def sigma(self) -> float | None:
        return float(sum(self.std) / len(self.std)) if self.std else None


@dataclass
class Analysis:
    params: int
    macs: int  # per image, from the layer formulas
    counted_macs: int  # per image, counted by torch.utils.flop_counter
    stages: list  # [{name, type, shape}]
    rf: float  # theoretical RF of the last spatial map, pixels (H axis; the models are square)
    rf_jump: float  # input pixels between neighbouring units of that map
    final_map: tuple  # (C, H, W) of that map
    erf_init: ERFSummary
    train_memory_bytes: int  # estimated activations + their gradients of one batch-32 step


def _erf_summary(model, shape, n_samples: int) -> ERFSummary:
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
        erf_init=_erf_summary(model, shape, erf_samples),
        train_memory_bytes=activations * TRAIN_BATCH * 4 * 2,
    )


def _with_size(model_name: str, overrides: dict, image_size: int) -> dict:
    return {**overrides, "image_size": image_size} if "image_size" in model_knobs(model_name) else dict(overrides)


def available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# --- latency: the one measured function of the CLI and benchmarks/test_kernels.py ----------------------


@dataclass
class Latency:
    """Milliseconds per call: median and quartiles (the spread) of ``steps`` timed calls.

    ``others_cpu``: the share of the machine's CPU that other processes used while the kept
    round was timed (None where /proc/stat is missing). On a shared machine another job can
    slow a measurement tenfold; see ``measure_latency``."""

    what: str  # "forward" (eval, no grad) | "train" (forward, loss, backward, AdamW step)
    batch: int
    channels_last: bool
    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    steps: int
    warmup: int
    others_cpu: float | None = None
    rounds: int = 1

    @property
    def contended(self) -> bool:
        return self.others_cpu is not None and self.others_cpu > CONTENTION_LIMIT

    @property
    def key(self) -> str:
        return f"{'fwd' if self.what == 'forward' else 'train'}_b{self.batch}_{layout_name(self.channels_last)}"


def layout_name(channels_last: bool) -> str:
    return "channels_last" if channels_last else "contiguous"


@dataclass
class LatencySettings:
    forward_steps: int = 30
    train_steps: int = 10
    warmup: int = 3
    max_rounds: int = 3  # timed rounds while other processes use the CPU (see measure_latency)
    # More timed steps where a round would be shorter: /proc/stat counts in 10 ms ticks, so a
    # 10 ms round cannot tell whether another process ran during it.
    min_round_seconds: float = 0.5


# Other processes using more than this share of the CPU make a timing round "contended".
CONTENTION_LIMIT = 0.10
MIN_JUDGED_SECONDS = 0.2  # shorter rounds are not judged (others_cpu None): too few ticks
MAX_STEPS = 5000


def cpu_busy_seconds() -> float | None:
    """CPU seconds every process on the machine has spent busy since boot (/proc/stat; None
    elsewhere): user, nice, system, irq, softirq and steal (a hypervisor's other guests)."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(values) < 8:
        return None
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def timed_round(step, x, steps: int, warmup: int, sync):
    """``speed.time_loop`` once, plus the CPU share other processes took meanwhile: what the
    whole machine spent busy minus what this process spent, over wall time x CPUs."""
    from rustlab.bench.speed import time_loop

    busy0, own0, wall0 = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    timing = time_loop(step, itertools.repeat(x), steps, warmup, sync)
    busy1, own1, wall1 = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    others = None
    if busy0 is not None and busy1 is not None and wall1 - wall0 >= MIN_JUDGED_SECONDS:
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / ((wall1 - wall0) * (os.cpu_count() or 1))
        others = min(1.0, others)  # tick rounding can overshoot a little
    return timing, others


def measure_latency(model_name: str, model_config: dict, what: str, batch: int, channels_last: bool = False,
                    steps: int = 10, warmup: int = 3, image_size: int = DEFAULT_IMAGE_SIZE,
                    device: str = "cpu", max_rounds: int = 1, min_round_seconds: float = 0.0) -> Latency:
    """Time one configuration's forward (eval, inference mode) or training step (the trainer's
    AdamW + one-cycle and the task's loss on random data) with ``speed.time_loop``.

    ``model_config`` is the full config override (kernel_size, stride, pool, widths, ...).
    When other processes took more than ``CONTENTION_LIMIT`` of the CPU during a round, it is
    timed again, up to ``max_rounds`` rounds; the least disturbed round is kept and its
    ``others_cpu`` reported, so a disturbed number is flagged rather than passed off as clean.
    ``steps`` is raised (up to MAX_STEPS) so that a round lasts ``min_round_seconds``, judged by
    the warm-up; the steps actually timed are in the result."""
    import torch

    from rustlab.bench.speed import _sync_for
    from rustlab.config import TrainConfig
    from rustlab.device import resolve_device
    from rustlab.registry import get_model_spec, get_task
    from rustlab.train import make_optimizer

    if what not in ("forward", "train"):
        raise ValueError(f"what must be 'forward' or 'train', not {what!r}")
    dev = resolve_device(device)
    spec = get_model_spec(model_name)
    task = get_task(spec.task)
    torch.manual_seed(0)
    model = spec.build(spec.make_config(_with_size(model_name, model_config, image_size))).to(dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(input_shape(model, image_size, batch), device=dev).contiguous(memory_format=fmt)
    sync = _sync_for(dev)
    if what == "forward":
        model.eval()

        def step(inputs):
            with torch.inference_mode():
                model(inputs)
            return len(inputs)

    else:
        model.train()
        if task.target == "mask":
            y = (torch.rand(batch, 1, image_size, image_size, device=dev) > 0.7).float()
        else:
            y = torch.randint(0, int(getattr(model.config, "num_classes", 2)), (batch,), device=dev)
        # one-cycle over more steps than can run: its per-step cost is the same, and it never runs out
        optimizer, scheduler = make_optimizer(model, TrainConfig(epochs=1),
                                              (max(steps, MAX_STEPS) + warmup + 1) * (max_rounds + 1))

        def step(inputs):
            loss = task.loss(model(inputs), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            return len(inputs)

    round_warmup = warmup
    if min_round_seconds > 0:
        probe, _ = timed_round(step, x, 1, warmup, sync)  # the warm-up, and one step to size the round
        steps = min(MAX_STEPS, max(steps, math.ceil(min_round_seconds / max(probe.seconds, 1e-6))))
        round_warmup = 0  # already warm
    rounds = []
    for _ in range(max(1, max_rounds)):
        timing, others = timed_round(step, x, steps, round_warmup, sync)
        rounds.append((others if others is not None else 0.0, statistics.median(timing.durations), timing, others))
        if others is None or others <= CONTENTION_LIMIT:
            break
    _, _, timing, others = min(rounds, key=lambda r: (r[0], r[1]))
    ms = sorted(1000 * d for d in timing.durations)
    q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else (ms[0], ms[0], ms[0])
    return Latency(what, batch, channels_last, round(statistics.median(ms), 4), round(q1, 4), round(q3, 4),
                   round(ms[0], 4), steps, warmup, None if others is None else round(others, 3), len(rounds))


# --- quality --------------------------------------------------------------------------------------------


@dataclass
class Quality:
    """The task's monitored metric (accuracy, IoU) of the best-on-validation epoch, per seed."""

    metric: str
    epochs: int
    seeds: list
    val: list
    test: list  # empty where the data has no test split
    train_seconds: list
    history: list = field(default_factory=list, repr=False)  # per seed: the trainer's epoch rows

    @staticmethod
    def _mean(values):
        return float(statistics.fmean(values)) if values else None

    @staticmethod
    def _std(values):
        # sample std (n-1): the seeds are a sample of what the recipe gives; none from one seed
        return float(statistics.stdev(values)) if len(values) > 1 else None

    @property
    def val_mean(self):
        return self._mean(self.val)

    @property
    def val_std(self):
        return self._std(self.val)

    @property
    def test_mean(self):
        return self._mean(self.test)

    @property
    def test_std(self):
        return self._std(self.test)


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

    from rustlab.checkpoint import build_model_from_checkpoint
    from rustlab.config import TrainConfig
    from rustlab.errors import Interrupted
    from rustlab.registry import get_model_spec, get_task
    from rustlab.train import train

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
    from rustlab.registry import get_model_spec

    source = load_source(data, task=get_model_spec(model_name).task)
    return len(assign_splits(source, seed=0)["train"])


# --- the whole run --------------------------------------------------------------------------------------


@dataclass
class ConfigResult:
    config: KernelConfig
    model_config: dict
    analysis: Analysis | None = None
    latency: list = field(default_factory=list)  # Latency
    quality: Quality | None = None
    erf_trained: ERFSummary | None = None
    skipped: str | None = None  # why it was not measured (e.g. the feature map collapses)

    def latency_of(self, what: str, channels_last: bool) -> Latency | None:
        return next((lat for lat in self.latency if lat.what == what and lat.channels_last == channels_last), None)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["label"], d["scheme"] = self.config.label, self.config.scheme
        if self.quality is not None:
            q = self.quality
            d["quality"].update(val_mean=q.val_mean, val_std=q.val_std, test_mean=q.test_mean, test_std=q.test_std)
        return d


@dataclass
class KernelReport:
    machine: dict
    settings: dict
    results: list = field(default_factory=list)  # ConfigResult
    command: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"machine": self.machine, "settings": self.settings, "command": self.command,
                "seconds": round(self.seconds, 1), "results": [r.to_dict() for r in self.results]}


def run_kernels(model: str = "cnn", kernels=None, strides=None, pools=None, data: str | None = None,
                epochs: int | None = None, seconds: float | None = None, seeds: int | None = None,
                image_size: int | None = None, quick: bool = False, device: str = "cpu",
                latency: LatencySettings | None = None, erf_samples: int | None = None,
                model_overrides: dict | None = None, log=None) -> KernelReport:
    """Measure every configuration of the sweep; see the module docstring."""
    import torch

    from rustlab.bench.kernels_report import plural, config_line
    from rustlab.bench.speed import machine_info
    from rustlab.config import TrainConfig
    from rustlab.registry import get_model_spec

    log = log or (lambda message: None)
    if epochs is not None and seconds is not None:
        raise SweepError("--seconds", "give either --epochs or --seconds, not both")
    base = dict(QUICK_MODELS.get(model, {}) if quick else {})
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
    start, busy_start, own_start = time.perf_counter(), cpu_busy_seconds(), time.process_time()
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
            result.erf_trained = _erf_summary(trained, input_shape(trained, image_size), erf_samples)
            say(f"[{index}/{len(configs)}] {config_line(result)}")
        bar.close()
    report.machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    report.seconds = time.perf_counter() - start
    busy_end = cpu_busy_seconds()
    if busy_start is not None and busy_end is not None and report.seconds > 0:
        # how quiet the machine was: the total time holds only where others took little CPU
        others = max(0.0, (busy_end - busy_start) - (time.process_time() - own_start))
        report.machine["others_cpu_during_run"] = round(others / (report.seconds * (os.cpu_count() or 1)), 3)
    return report
