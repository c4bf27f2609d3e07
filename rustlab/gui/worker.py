"""Prediction off the UI thread: one worker thread takes jobs from a queue and posts messages
back on another queue, which the window drains with ``after`` polling. The worker never touches
Tk (Tk is not thread-safe); it hands over plain data and PIL images.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rustlab.gui import render
from rustlab.gui.results import DONE, ERROR, ResultRow


@dataclass
class ModelReady:
    checkpoint: str
    name: str  # short: "cnn (run/best.safetensors)"
    task: str
    summary: str  # one line for the model bar
    explains: bool  # Grad-CAM available
    shows_masks: bool = False  # the model's own per-pixel mask is the overlay
    note: str = ""


@dataclass
class ModelFailed:
    checkpoint: str
    message: str


@dataclass
class Queued:
    """Dropped paths expanded to files; ``rows`` are their placeholders, in prediction order."""

    paths: list
    rows: list = field(default_factory=list)
    generation: int = 0  # the window marks rows of a drop made before Stop as cancelled


class Worker:
    def __init__(self, device: str = "auto", torch_threads: int | None = None):
        self.device = device
        self.torch_threads = torch_threads  # torch's intra-op threads (process-wide); None leaves them
        # (priority, sequence, job): listing a new drop jumps ahead of queued predictions, so its
        # rows appear at once; everything else runs in order (a model load waits for the files
        # dropped before it)
        self.jobs: queue.PriorityQueue = queue.PriorityQueue()
        self._sequence = itertools.count()
        self.messages: queue.Queue = queue.Queue()
        self.predictor = None
        self.explainer = None
        self._ids = itertools.count(1)
        self.generation = 0  # bumped by cancel(); jobs from an older generation are skipped
        self._thread = threading.Thread(target=self._loop, name="rustlab-gui-worker", daemon=True)
        self._thread.start()

    # --- called from the UI thread -------------------------------------------------------------
    def _put(self, priority: int, job) -> None:
        self.jobs.put((priority, next(self._sequence), job))

    def load(self, checkpoint) -> None:
        self._put(1, ("load", str(checkpoint)))

    def submit(self, paths) -> None:
        self._put(0, ("expand", [str(p) for p in paths], self.generation))

    def cancel(self) -> None:
        self.generation += 1

    def close(self, timeout: float = 2.0) -> None:
        self.cancel()
        self._put(-1, None)
        self._thread.join(timeout)

    # --- the worker thread ---------------------------------------------------------------------
    def _loop(self):
        while True:
            _, _, job = self.jobs.get()
            if job is None:
                return
            kind, *args = job
            try:
                if kind == "load":
                    self._load(*args)
                elif kind == "expand":
                    self._expand(*args)
                elif kind == "predict":
                    self._predict(*args)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one bad job
                if kind == "predict":
                    self.messages.put(ResultRow(args[0], args[1], ERROR, error=f"internal error: {exc}",
                                                unreadable=False, thumbnail=render.placeholder(render.THUMB)))
                elif kind == "load":
                    self.messages.put(ModelFailed(args[0], f"{type(exc).__name__}: {exc}"))
                elif kind == "expand":  # the window counts on one Queued per drop
                    self.messages.put(Queued(args[0], [ResultRow(
                        next(self._ids), ", ".join(args[0]), ERROR, error=f"internal error: {exc}",
                        unreadable=False, thumbnail=render.placeholder(render.THUMB))], args[1]))

    def _load(self, checkpoint: str):
        from rustlab.errors import RustlabError
        from rustlab.predict import Predictor

        if self.torch_threads:
            import torch

            torch.set_num_threads(min(torch.get_num_threads(), self.torch_threads))
        try:
            predictor = Predictor(checkpoint, device=self.device)
        except RustlabError as exc:
            self.messages.put(ModelFailed(checkpoint, str(exc)))
            return
        explainer, note = None, ""
        if predictor.task.explainable:
            from rustlab.explain import ExplainError, Explainer

            try:
                explainer = Explainer(predictor)
            except ExplainError as exc:
                note = str(exc)
        self.predictor, self.explainer = predictor, explainer
        self.messages.put(ModelReady(predictor.checkpoint, predictor.name, predictor.task.name,
                                     model_summary(predictor.meta, predictor.task.monitor),
                                     explainer is not None, predictor.task.dense_output, note))

    def _expand(self, paths: list, generation: int):
        from rustlab.predict import list_images

        rows = []
        for path in paths:
            try:
                files = list_images([path])
            except OSError as exc:  # an unreadable folder is one error row, not a lost drop
                rows.append(ResultRow(next(self._ids), path, ERROR, error=f"cannot list folder ({exc.strerror})",
                                      thumbnail=render.placeholder(render.THUMB)))
                continue
            rows.extend(ResultRow(next(self._ids), f) for f in files)
        self.messages.put(Queued(paths, rows, generation))
        for row in rows:
            if row.status != ERROR:
                self._put(1, ("predict", row.id, row.source, generation))

    def _predict(self, row_id: int, source: str, generation: int):
        if generation != self.generation:
            return  # cancelled: the window already marked the row
        self.messages.put(predict_row(self.predictor, self.explainer, row_id, source))


def predict_row(predictor, explainer, row_id: int, source: str) -> ResultRow:
    """One file to one finished row: prediction, timing, pictures; unreadable files to an error row."""
    from rustlab.data.images import open_rgb
    from rustlab.errors import ImageError

    if predictor is None:
        return ResultRow(row_id, source, ERROR, error="no model loaded (File > Load model...)", unreadable=False,
                         thumbnail=render.placeholder(render.THUMB))
    start = time.perf_counter()
    try:
        # decoded exactly as `rustlab predict` does (JPEG draft at the model size), so the
        # window and the CLI give the same numbers for the same file
        image = open_rgb(source, draft_size=predictor.image_size, name=source)
        pred = predictor.predict(image, name=source)
    except ImageError as exc:
        return ResultRow(row_id, source, ERROR, error=exc.reason, model=predictor.name,
                         checkpoint=predictor.checkpoint, thumbnail=render.placeholder(render.THUMB))
    seconds = time.perf_counter() - start
    heat = None
    if explainer is not None:
        try:
            heat = explainer.rust_heatmap(image, source)
        except Exception:  # noqa: BLE001 - the explanation is extra; the prediction stands without it
            heat = None
    preview = image
    if max(image.size) < render.PREVIEW:
        # a JPEG drafted down for the model: decode a sharper copy for the eye
        try:
            preview = open_rgb(source, draft_size=render.PREVIEW, name=source)
        except ImageError:
            preview = image
    preview = render.fit(preview, render.PREVIEW)
    thumbnail = render.fit(preview, render.THUMB)
    return ResultRow(
        row_id, source, DONE, label=pred.label, is_rust=pred.is_rust, confidence=pred.confidence,
        rust_probability=pred.rust_probability, rust_area=pred.rust_area, seconds=seconds,
        image_size=_original_size(source, image.size), model=predictor.name, checkpoint=predictor.checkpoint,
        thumbnail=thumbnail, preview=render.pack(preview), heat=heat,
        mask=None if pred.mask is None else _as_array(pred.mask),
        mask_threshold=float((predictor.meta.get("calibration") or {}).get("pixel_threshold", 0.5)),
    )


def _original_size(source: str, decoded: tuple) -> tuple:
    """(width, height) of the file as the camera wrote it (upright), not of the reduced JPEG
    decode the model needed: an inspector should see 5472 x 3648, not 684 x 456."""
    from PIL import Image

    try:
        with Image.open(source) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientation: rotated by 90 degrees
                width, height = height, width
            return (width, height)
    except Exception:  # noqa: BLE001 - a size is a nicety; the decoded one is close enough
        return tuple(decoded)


def _as_array(mask):
    import numpy as np

    if hasattr(mask, "detach"):
        mask = mask.detach().float().cpu().numpy()
    return np.asarray(mask, dtype=np.float32)


def model_summary(meta: dict, monitor: str = "accuracy") -> str:
    """One line about the loaded model: what it is and how it scored on held-out (validation)
    data: the metric that picked the checkpoint, and image-level accuracy when that differs."""
    parts = [f"{meta['model']}", meta["task"], f"{meta['preprocessing']['image_size']} px"]
    val = ((meta.get("metrics") or {}).get("validation") or {})
    scores = [f"{key} {100 * val[key]:.1f} %" for key in dict.fromkeys((monitor, "accuracy"))
              if isinstance(val.get(key), (int, float))]
    if scores:
        # the data it was measured on: 91 % on synthetic images says little about real photos
        spec = str((meta.get("data") or {}).get("spec") or "")
        source = f" on {Path(spec).name or spec}" if spec else ""
        parts.append("validation " + ", ".join(scores) + source)
    calibration = meta.get("calibration") or {}
    if calibration and calibration.get("fitted", True):
        parts.append("calibrated")
    path = Path(meta["path"])
    parts.append(f"{path.parent.name}/{path.name}")
    return " · ".join(parts)

