"""The records of `rustlab bench kernels`: the sweep's configurations and what is measured for
each, as plain dataclasses. ``kernels_measure`` and ``kernels`` fill them, ``kernels_report``
reads them; this module imports no other part of rustlab.bench except the contention threshold."""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field

from rustlab.bench.timing import is_contended
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
# --quick: the plugin's smoke_config, one seed, one epoch, tiny data. A smoke run: its numbers mean nothing.
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


@dataclass
class Latency:
    """Milliseconds per call: median and quartiles (the spread) of ``steps`` timed calls.

    ``others_cores``: the cores other processes kept busy while the kept round was timed (None
    where /proc/stat is missing or the round was too short to judge). On a shared machine
    another job can slow a measurement tenfold; see ``kernels_measure.measure_latency``."""

    what: str  # "forward" (eval, no grad) | "train" (the trainer's step: forward, loss, backward, AdamW)
    batch: int
    channels_last: bool
    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    steps: int
    warmup: int
    others_cores: float | None = None
    rounds: int = 1

    @property
    def contended(self) -> bool:
        return is_contended(self.others_cores)

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


MAX_STEPS = 5000


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
        for lat in d["latency"]:
            lat["contended"] = is_contended(lat["others_cores"])
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

