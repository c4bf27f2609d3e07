"""Training run configuration (a dataclass, as in nanoGPT) and its sources: defaults, a TOML
file (``--config``), command-line flags and ``--set key=value`` model overrides."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from rustlab.errors import RustlabError


BALANCE_MODES = ("none", "classes", "sources", "sources+classes")
TTA_MODE_NAMES = ("none", "hflip", "hvflip")  # test-time flips of a per-pixel model (rustlab.inference.tta)


def check_mode(mode: str, dense_output: bool, where: str = "--tta") -> str:
    """``mode`` if it is a known test-time flip mode and the model's outputs are per pixel (or it
    is "none"). A setting, checked by the trainer and the checkpoint loader without torch."""
    if mode not in TTA_MODE_NAMES:
        raise RustlabError(f"{where} {mode!r}: expected one of {', '.join(TTA_MODE_NAMES)}")
    if mode != "none" and not dense_output:
        raise RustlabError(f"{where} {mode}: test-time flips are for per-pixel (segmentation) models; "
                           "a classifier's flipped photo is not scored")
    return mode


def parse_setting(value):
    """A config value (bool, or "auto"/"true"/"false" from a flag or TOML) as "auto", True or False."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "on", "yes", "1"):
            return True
        if lowered in ("false", "off", "no", "0"):
            return False
        return lowered
    return value


def _sources(value) -> list[str]:
    """A TOML string, a list or a CLI tuple of sources (or nothing): always a list of strings."""
    if isinstance(value, str):
        value = [value]
    return [str(d) for d in (value or [])]


@dataclass
class TrainConfig:
    model: str = "cnn"
    data: str = "builtin"
    negatives: str | None = None  # images with no rust, added with empty masks / no_rust labels
    # more sources mixed into training (e.g. another collector's photos): each is split on its own,
    # its train and validation splits join ours and its test split stays out, held out for
    # `rustlab evaluate --data <it>` (which recomputes the same split from the checkpoint)
    extra_data: list[str] = field(default_factory=list)
    # photos labelled rust / no rust whose training split fits a segmenter's image-call head after
    # training, and nothing else (rustlab.training.image_call); a model without such a head refuses them
    call_data: list[str] = field(default_factory=list)
    # labels checked by eye (rustlab.data.corrections): a folder of <source>.csv files or one file;
    # None: each source's own corrections file beside it, if any; "none": the publisher's labels
    corrections: str | None = None
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "onecycle"  # onecycle | cosine | constant
    label_smoothing: float = 0.0
    augment: str = "standard"  # none | light | standard | strong
    image_size: int | None = None  # None: the model config's image_size
    seed: int = 0
    split_seed: int | None = None  # seed of the seeded splits; None: seed (fix it to compare seeds on one split)
    # draw training images balanced (with replacement) instead of shuffling: "classes" (each class
    # equally likely), "sources" (each source equally likely: a 200-photo collector is not drowned
    # by a 1000-photo one), "sources+classes" (each class of each source), or "none"
    balance: str = "none"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision on CUDA only (bf16 is far slower than fp32 on these CPUs)
    # NHWC memory layout: "auto" where experiments/speed/channels_last.md measured a gain for the
    # model on this device type (rustlab.inference.layout), or true / false to force it
    channels_last: bool | str = "auto"
    workers: int = 0  # DataLoader workers; 0 measured fastest on 2 cores (1 worker: 9-25% slower; experiments/speed)
    patience: int = 10  # early stopping: epochs without a better validation metric
    out: str = "runs"
    name: str | None = None  # run folder name; default <model>-<timestamp>
    cache: bool = True  # reuse decoded images across runs
    model_config: dict = field(default_factory=dict)  # overrides of the plugin's config
    # test-time flips of a per-pixel model (rustlab.inference.tta): none | hflip | hvflip, recorded in the
    # checkpoint and used by the final calibration and test pass, evaluate, predict, export, GUI
    tta: str = "none"
    # weight averaging (rustlab.training.ema): decay per optimiser step of an exponential moving
    # average of the weights, which validation, the checkpoints and the test pass use; 0 = off
    ema: float = 0.0
    # start from a trained model (rustlab.training.init): "default" (the packaged one) or a checkpoint
    init: str | None = None

    def __post_init__(self):
        self.extra_data, self.call_data = _sources(self.extra_data), _sources(self.call_data)
        # several --data sources: the first is the main one (its classes name the model's), the
        # others join it exactly as --extra-data does (each split on its own, test held out)
        if isinstance(self.data, (list, tuple)):
            sources = [str(d) for d in self.data]
            if not sources:
                raise RustlabError("--data: at least one source is needed")
            self.data, self.extra_data = sources[0], sources[1:] + self.extra_data
        self.channels_last = parse_setting(self.channels_last)
        # runs from before balancing by source stored true / false
        if isinstance(self.balance, bool) or self.balance is None:
            self.balance = "classes" if self.balance else "none"

    @property
    def data_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.lr > 0, "--lr must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.schedule in ("onecycle", "cosine", "constant"), "schedule must be onecycle, cosine or constant"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.augment in ("none", "light", "standard", "strong"), "augment must be none, light, standard or strong"),
            (self.image_size is None or self.image_size >= 8, "--image-size must be >= 8"),
            (self.workers >= 0, "--workers must be >= 0"),
            (self.patience >= 1, "patience must be >= 1"),
            (self.balance in BALANCE_MODES, f"--balance must be one of {', '.join(BALANCE_MODES)}"),
            (self.channels_last in ("auto", True, False), "channels_last must be auto, true or false"),
            (self.data not in self.extra_data, f"--data {self.data}: given twice"),
            (self.tta in TTA_MODE_NAMES, f"--tta must be one of {', '.join(TTA_MODE_NAMES)}"),
            (0 <= self.ema < 1, "--ema must be in [0, 1) (the average's decay per step; 0 = off)"),
        ]
        for ok, message in checks:
            if not ok:
                raise RustlabError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_value(text: str):
    """``--set`` values: Python/TOML-ish literals (3, 0.5, true, [32, 64]) or plain strings."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(pairs) -> dict:
    result = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise RustlabError(f"--set {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        result[key.strip()] = parse_value(value)
    return result


def load_toml(path) -> dict:
    """A run config file: TrainConfig keys at the top, plugin overrides under [model_config]."""
    import tomllib

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise RustlabError(f"--config {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RustlabError(f"--config {path}: invalid TOML ({exc})") from None
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RustlabError(f"--config {path}: unknown keys {unknown}; known: {sorted(known)}")
    return data


def resolve_config(file: str | None = None, flags: dict | None = None, sets=()) -> TrainConfig:
    """defaults < config file < explicit flags; ``--set`` pairs update ``model_config``."""
    values = load_toml(file) if file else {}
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    model_config = dict(values.pop("model_config", {}) or {})
    model_config.update(parse_overrides(sets))
    cfg = TrainConfig(**values, model_config=model_config)
    cfg.validate()
    return cfg
