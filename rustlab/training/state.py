"""Stopping and resuming training: the resumable state file and the signal handling around it.

``RUN_DIR/train_state.safetensors`` holds everything `rustlab train --resume RUN_DIR` needs:
the model weights, their average (``--ema``) and the optimizer's tensors as safetensors, and in
the JSON header the optimizer's structure, the scheduler and grad-scaler state, the last
completed epoch, the best validation metrics and epoch, the early-stopping counter and the
metric history. Nothing is pickled and nothing is read with torch.load. It is written
atomically (temp file + rename) once before the first epoch and after every epoch, so a kill at
any instant leaves the previous complete state; a resume loses at most the epoch that was running.

RNG states are not stored because they are not needed: the trainer reseeds torch, numpy and
python from (seed, epoch, rank) at the start of every epoch, the sampler permutes by
(seed, epoch) and each sample's augmentation is seeded from (seed, epoch, index) (see
``rustlab.data.sampling``). Epoch e+1 therefore draws the same numbers whether the process ran
epochs 1..e or was restarted after e, with any number of DataLoader workers or processes.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rustlab import __version__
from rustlab.errors import CheckpointError, RustlabError

STATE_NAME = "train_state.safetensors"
FORMAT = "rustlab-train-state"
FORMAT_VERSION = 1
_META_KEY = "rustlab_train_state"
# Settings a resume may change: where and how fast it runs, not what it computes.
RUNTIME_SETTINGS = ("device", "workers", "cache", "out", "name")


@dataclass
class Progress:
    """Where training stands after ``epoch`` completed epochs."""

    epoch: int = 0
    best_metrics: dict | None = None  # validation metrics of the best epoch
    best_epoch: int = 0
    last_metrics: dict | None = None  # validation metrics of ``epoch``
    stale: int = 0  # epochs since the last improvement (early stopping)
    history: list = field(default_factory=list)  # one metrics.jsonl row per epoch
    complete: bool = False  # training, calibration and test all finished


@dataclass
class TrainState:
    path: Path
    progress: Progress
    train_args: dict
    checkpoint_meta: dict  # the metadata best/last.safetensors carry (model, classes, data, ...)
    model: dict  # name -> tensor
    optimizer: dict
    scheduler: dict
    scaler: dict | None
    world_size: int = 1
    average: dict | None = None  # the weight average's state (--ema), name -> tensor


# --- JSON + tensors: optimizer and scheduler state dicts without pickle -----------------------

def _pack(obj, tensors: dict, key: str):
    """``obj`` as JSON, its tensors moved to ``tensors`` under names derived from ``key``."""
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().cpu().contiguous()
        return {"$tensor": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _pack(v, tensors, f"{key}.{k}") for k, v in obj.items()}
        # optimizer state is keyed by parameter index (int): keep the key types
        return {"$items": [[_pack(k, tensors, f"{key}.k{i}"), _pack(v, tensors, f"{key}.{i}")]
                           for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"$tuple": [_pack(v, tensors, f"{key}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, tensors, f"{key}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise RustlabError(f"cannot store {type(obj).__name__} at {key} in a training state "
                       "(optimizer and scheduler state must be tensors, numbers, strings and lists)")


def _unpack(obj, tensors: dict):
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "$tensor" in obj:
            return tensors[obj["$tensor"]]
        if "$tuple" in obj:
            return tuple(_unpack(v, tensors) for v in obj["$tuple"])
        if "$items" in obj:
            return {_unpack(k, tensors): _unpack(v, tensors) for k, v in obj["$items"]}
        return {k: _unpack(v, tensors) for k, v in obj.items()}
    return obj


# --- save / load -----------------------------------------------------------------------------

def save_train_state(run_dir, *, model, optimizer, scheduler, scaler, progress: Progress, train_args: dict,
                     checkpoint_meta: dict, world_size: int = 1, average=None) -> Path:
    """Write RUN_DIR/train_state.safetensors atomically. ``average``: the run's WeightAverage, if any."""
    from rustlab.checkpoint import write_safetensors

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if average is not None:
        tensors.update({f"average.{k}": v.detach().cpu().contiguous() for k, v in average.state_dict().items()})
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rustlab_version": __version__,
        "progress": asdict(progress),
        "train_args": train_args,
        "checkpoint_meta": checkpoint_meta,
        "world_size": world_size,
        "optimizer": _pack(optimizer.state_dict(), tensors, "optimizer"),
        "scheduler": _pack(scheduler.state_dict(), tensors, "scheduler"),
        "scaler": _pack(scaler.state_dict(), tensors, "scaler") if scaler is not None else None,
    }
    path = Path(run_dir) / STATE_NAME
    write_safetensors(path, tensors, {_META_KEY: json.dumps(header)})
    return path


def load_train_state(run_dir) -> TrainState:
    """The state of an interrupted run, validated; a one-line CheckpointError otherwise."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"--resume {run_dir}: no such run folder")
    path = run_dir / STATE_NAME
    if not path.is_file():
        raise CheckpointError(f"--resume {run_dir}: no {STATE_NAME} in it (not a rustlab run folder, or it was "
                              "stopped before its first epoch started: start it again)")
    try:
        with safe_open(str(path), "pt") as fh:
            header = json.loads((fh.metadata() or {})[_META_KEY])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        text = str(exc).strip().splitlines()
        raise CheckpointError(f"{path}: damaged training state ({text[0] if text else type(exc).__name__})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a rustlab training state")
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by rustlab {header.get('rustlab_version')}; this is rustlab "
                              f"{__version__}: upgrade rustlab to resume it")
    try:
        progress = Progress(**header["progress"])
        return TrainState(
            path=path, progress=progress, train_args=header["train_args"],
            checkpoint_meta=header["checkpoint_meta"],
            model={k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")},
            optimizer=_unpack(header["optimizer"], tensors), scheduler=_unpack(header["scheduler"], tensors),
            scaler=_unpack(header["scaler"], tensors) if header.get("scaler") else None,
            world_size=int(header.get("world_size", 1)),
            average={k[len("average."):]: v for k, v in tensors.items() if k.startswith("average.")} or None)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: incomplete training state (missing {exc})") from None


def resume_config(run_dir, **runtime):
    """The TrainConfig of the run in ``run_dir``, with runtime settings (device, workers, cache) replaced."""
    from rustlab.config import TrainConfig

    state = load_train_state(run_dir)
    unknown = set(runtime) - set(RUNTIME_SETTINGS)
    if unknown:
        raise RustlabError(f"--resume continues the run with its own settings; cannot change {sorted(unknown)}")
    args = {**state.train_args, **{k: v for k, v in runtime.items() if v is not None}}
    try:
        cfg = TrainConfig(**args)
    except TypeError as exc:
        raise CheckpointError(f"{state.path}: settings from another rustlab version ({exc})") from None
    cfg.validate()
    return cfg


def check_resumable(state: TrainState, cfg) -> None:
    """The run being resumed computes what the interrupted one would have."""
    if state.progress.complete:
        raise RustlabError(f"--resume {state.path.parent}: this run finished at epoch {state.progress.epoch}; "
                           "nothing to resume")
    from rustlab.config import TrainConfig

    current = cfg.to_dict()
    defaults = TrainConfig().to_dict()  # settings added since the run started have their default
    try:  # stored in that run's own spelling (e.g. balance true): compare the normalised values
        stored = TrainConfig(**state.train_args).to_dict()
    except TypeError:
        stored = state.train_args
    changed = sorted(k for k in set(state.train_args) | set(current)
                     if k not in RUNTIME_SETTINGS and stored.get(k, defaults.get(k)) != current.get(k))
    if changed:
        raise RustlabError(f"--resume {state.path.parent}: settings differ from the interrupted run's: "
                           f"{', '.join(changed)}")


def remove_stale_temp_files(run_dir) -> list[Path]:
    """Temp files of writes that a kill interrupted (atomic_write's ``.NAME.XXXX.tmp``)."""
    removed = []
    for tmp in Path(run_dir).glob(".*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


# --- signals ---------------------------------------------------------------------------------

class StopSignals:
    """While active: the first SIGINT/SIGTERM asks training to stop after the current step;
    a second one stops at once (KeyboardInterrupt). ``event`` (a threading.Event) lets a GUI ask
    the same way. Handlers are only installed from the main thread (Python's rule)."""

    def __init__(self, log=None, event: threading.Event | None = None):
        self.signum: int | None = None
        self.event = event
        self.log = log or (lambda message: None)
        self._previous = {}
        self._first_at = 0.0

    @property
    def requested(self) -> bool:
        return self.signum is not None or (self.event is not None and self.event.is_set())

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or signal.SIGINT)  # the shell's convention: 130 SIGINT, 143 SIGTERM

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
        return False

    def _handle(self, signum, frame):
        now = time.monotonic()
        if self.signum is not None:
            # torchrun forwards the terminal's Ctrl-C to its workers, which then see it twice
            # within milliseconds; only a deliberate second press means "quit at once"
            if now - self._first_at > 1.0:
                self.__exit__()
                raise KeyboardInterrupt
            return
        self.signum, self._first_at = signum, now
        self.log(f"{signal.Signals(signum).name}: stopping after this step; the last completed epoch is saved "
                 "(send it again to quit at once)")
