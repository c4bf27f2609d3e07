"""The run folder: one per training run, and every file the trainer writes into it.

``config.json`` (the run's settings), ``metrics.jsonl`` (a row per epoch), ``best`` and
``last.safetensors`` (model checkpoints with their metadata), ``train_state.safetensors``
(rustlab.training.state), ``curves.png``, ``test_metrics.json`` and ``skipped.txt``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from rustlab.errors import RustlabError


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def create(cls, out, name: str | None, model: str) -> "RunFolder":
        """A new folder ``out/name`` (default ``<model>-<timestamp>``), suffixed -2, -3 ... if taken."""
        out = Path(out).expanduser()
        if out.exists() and not out.is_dir():
            raise RustlabError(f"--out {out}: is a file, expected a folder")
        name = name or f"{model}-{datetime.now():%Y%m%d-%H%M%S}"
        path = out / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = out / f"{name}-{suffix}"
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            raise RustlabError(f"--out {out}: cannot create run folder ({exc.strerror})") from None
        return cls(path)

    def remove_if_empty(self) -> None:
        """Remove the folder if nothing was written into it (a run whose setup failed)."""
        try:
            self.path.rmdir()  # refuses a folder with anything in it
        except OSError:
            pass

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __str__(self) -> str:
        return str(self.path)

    def write_json(self, name: str, data: dict) -> Path:
        (self.path / name).write_text(json.dumps(data, indent=2))
        return self.path / name

    def save_model(self, name: str, model, meta: dict, epoch: int, val_metrics) -> None:
        from rustlab.checkpoint import save_checkpoint

        save_checkpoint(self.path / name, {f"model.{k}": v for k, v in model.state_dict().items()},
                        {**meta, "epoch": epoch, "metrics": {"validation": val_metrics}})

    def add_calibration(self, name: str, calibration: dict) -> None:
        """Store ``calibration`` in checkpoint ``name``'s metadata (its weights unchanged)."""
        from rustlab.checkpoint import load_checkpoint, save_checkpoint

        state_dict, meta = load_checkpoint(self.path / name)
        meta.pop("path", None)
        save_checkpoint(self.path / name, {f"model.{k}": v for k, v in state_dict.items()},
                        {**meta, "calibration": calibration})

    def open_metrics(self):
        return open(self.path / "metrics.jsonl", "a")

    def checkpoint_epoch(self, name: str) -> int | None:
        from rustlab.checkpoint import read_metadata
        from rustlab.errors import CheckpointError

        try:
            return read_metadata(self.path / name).get("epoch")
        except CheckpointError:
            return None

    def restore(self, progress, save_model, log) -> None:
        """Make the folder agree with a resumed state (the commit point of its last epoch).

        metrics.jsonl may hold a row of the epoch that was running, and best/last.safetensors may
        predate the state, when the kill fell between the state's write and theirs.
        ``save_model(name, epoch, val_metrics)`` rewrites a checkpoint from the resumed weights."""
        from rustlab.checkpoint import atomic_write

        rows = "".join(json.dumps(row) + "\n" for row in progress.history)
        atomic_write(self.path / "metrics.jsonl", lambda tmp: Path(tmp).write_text(rows))
        if progress.epoch == 0:
            return
        best = self.checkpoint_epoch("best.safetensors")
        if progress.best_epoch == progress.epoch and best != progress.epoch:
            save_model("best.safetensors", progress.epoch, progress.best_metrics)
        elif best != progress.best_epoch:
            log(f"warning: {self / 'best.safetensors'} is not the best epoch ({progress.best_epoch}) "
                "of the training state; it will be replaced when validation improves")
        if self.checkpoint_epoch("last.safetensors") != progress.epoch:
            save_model("last.safetensors", progress.epoch, progress.last_metrics)

    def write_skipped(self, skipped, log) -> None:
        (self.path / "skipped.txt").write_text("".join(f"{key}\t{reason}\n" for key, reason in skipped))
        log(f"warning: skipped {len(skipped)} unreadable image(s) (all listed in {self / 'skipped.txt'}):")
        for key, reason in skipped[:20]:
            log(f"  {key}: {reason}")
        if len(skipped) > 20:
            log(f"  ... and {len(skipped) - 20} more")
