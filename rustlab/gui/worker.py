"""Prediction off the UI thread: one worker thread takes jobs from a queue and posts messages
back on another queue, which the window drains with ``after`` polling. The worker never touches
Tk (Tk is not thread-safe); it hands over plain data and PIL images.
"""

from __future__ import annotations

import itertools
import os
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
        self._current = 0  # the sequence number of the job running now
        self._unfinished: dict = {}  # row id -> file of the predict job running now
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
            _, self._current, job = self.jobs.get()
            if job is None:
                return
            kind, *args = job
            try:
                if kind == "load":
                    self._load(*args)
                elif kind == "expand":
                    self._expand(*args)
                elif kind == "predict":
                    self._predict_many(*args)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one bad job
                if kind == "predict":  # the rows not finished yet (a drop's rows never stay "queued")
                    for row_id, source in self._unfinished.items():
                        self.messages.put(ResultRow(row_id, source, ERROR, error=f"internal error: {exc}",
                                                    unreadable=False, thumbnail=render.placeholder(render.THUMB)))
                elif kind == "load":
                    self.messages.put(ModelFailed(args[0], f"{type(exc).__name__}: {exc}"))
                elif kind == "expand":  # the window counts on one Queued per drop
                    self.messages.put(Queued(args[0], [ResultRow(
                        next(self._ids), ", ".join(args[0]), ERROR, error=f"internal error: {exc}",
                        unreadable=False, thumbnail=render.placeholder(render.THUMB))], args[1]))

    def _load(self, checkpoint: str):
        from rustlab.errors import RustlabError
        from rustlab.inference.predictor import Predictor

        if self.torch_threads:
            import torch

            torch.set_num_threads(min(torch.get_num_threads(), self.torch_threads))
        try:
            # photos=0: drops are small jobs, so a checkpoint not exported yet loads at once in
            # PyTorch rather than after its first export (rustlab.inference.engine)
            predictor = Predictor(checkpoint, device=self.device, threads=self.torch_threads, photos=0)
        except RustlabError as exc:
            self.messages.put(ModelFailed(checkpoint, str(exc)))
            return
        explainer, note = None, predictor.note or ""  # why it predicts in PyTorch, where it fell back
        if predictor.task.explainable:
            from rustlab.inference.explain import ExplainError, Explainer

            try:
                explainer = Explainer(predictor)
            except ExplainError as exc:
                note = "; ".join(filter(None, [note, str(exc)]))
        self.predictor, self.explainer = predictor, explainer
        self.messages.put(ModelReady(predictor.checkpoint, predictor.name, predictor.task.name,
                                     model_summary(predictor.meta, predictor.task.monitor),
                                     explainer is not None, predictor.task.dense_output, note))

    def _expand(self, paths: list, generation: int):
        from rustlab.inference.predictor import list_images

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
        todo = [(row.id, row.source) for row in rows if row.status != ERROR]
        if todo:
            self._put(1, ("predict", todo, generation))

    def _predict_many(self, todo: list, generation: int):
        """A drop's (row id, file) pairs through the folder pipeline (rustlab.inference.pipeline:
        decoding, previews and thumbnails in threads while this thread runs the model), CHUNK
        files per job. The rest goes back in the queue at this job's place: a new drop's listing
        (priority 0) still jumps ahead, and a model loaded after this drop still waits for it."""
        import contextlib

        from rustlab.inference.pipeline import decoded_batches

        self._unfinished = dict(todo)  # what an internal error turns into error rows
        if generation != self.generation:
            return  # cancelled: the window already marked the rows
        predictor, explainer = self.predictor, self.explainer
        chunk, rest = todo[:CHUNK], todo[CHUNK:]
        threads = gui_decode_threads()
        if predictor is None:
            rows = iter([[predict_row(None, None, row_id, source) for row_id, source in chunk]])
        else:
            rows = (finish_batch(predictor, explainer, [value for _, value in batch])
                    for batch in decoded_batches(chunk, lambda item, _name: decode_for_row(predictor, *item),
                                                 GUI_BATCH if threads else 1, workers=threads))
        with contextlib.closing(rows):
            for batch in rows:
                for row in batch:
                    self._unfinished.pop(row.id, None)
                    self.messages.put(row)
                if generation != self.generation:
                    return
        if rest:
            self.jobs.put((1, self._current, ("predict", rest, generation)))


# Files per worker job: between chunks a new drop is listed at once (its rows appear); within
# one, the pipeline keeps the decode threads busy. Batches are small so the first rows appear
# quickly.
CHUNK = 48
GUI_BATCH = 8


def gui_decode_threads() -> int:
    """Decode threads beside the window's thread and this worker: the cores beyond those two.
    On 2 cores, none, and batches of one (each file decoded and predicted in turn, as before the
    pipeline). With the cores shared by other jobs (load 4-10), tests/test_gui.py's 200-file drop
    saw the event loop stall past 0.3 s in 5 of 5 runs with one decode thread and batches of 8,
    in 3 of 10 with no thread and batches of 8 (the model's threads busy 8x longer at a stretch),
    in 0 of 3 with batches of one (the old one-file-per-job worker: 0 of 7)."""
    return max(0, min(4, (os.cpu_count() or 1) - 2))


@dataclass
class DecodedRow:
    """What the decode threads prepare for one file: the model's input and the window's pictures."""

    row_id: int
    source: str
    image: object  # PIL image as decoded for the model (a JPEG: drafted to the model size)
    model_input: object
    size: tuple
    preview: object
    thumbnail: object
    original_size: tuple
    seconds: float


def decode_for_row(predictor, row_id: int, source: str):
    """Decode (exactly as `rustlab predict` does: JPEG draft at the model size, so the window and
    the CLI give the same numbers for the same file), the model input, the preview and thumbnail;
    an unreadable file becomes its finished error row. Runs in a decode thread: no Tk here."""
    from rustlab.data.images import open_rgb
    from rustlab.errors import ImageError

    start = time.perf_counter()
    try:
        image = open_rgb(source, draft_size=predictor.image_size, name=source)
        model_input, size = predictor.preprocess(image, name=source)
    except ImageError as exc:
        return ResultRow(row_id, source, ERROR, error=exc.reason, model=predictor.name,
                         checkpoint=predictor.checkpoint, thumbnail=render.placeholder(render.THUMB))
    preview = image
    if max(image.size) < render.PREVIEW:
        # a JPEG drafted down for the model: decode a sharper copy for the eye
        try:
            preview = open_rgb(source, draft_size=render.PREVIEW, name=source)
        except ImageError:
            preview = image
    preview = render.fit(preview, render.PREVIEW)
    return DecodedRow(row_id, source, image, model_input, size, render.pack(preview), render.fit(preview, render.THUMB),
                      _original_size(source, image.size), time.perf_counter() - start)


def finish_batch(predictor, explainer, values: list) -> list[ResultRow]:
    """Finished rows, in order, for decode_for_row's values: one forward for the readable ones."""
    ready = [v for v in values if isinstance(v, DecodedRow)]
    results, each = iter(()), 0.0
    if ready:
        start = time.perf_counter()
        results = iter(predictor.run_batch([v.model_input for v in ready]))
        each = (time.perf_counter() - start) / len(ready)
    threshold = float((predictor.meta.get("calibration") or {}).get("pixel_threshold", 0.5))
    rows = []
    for value in values:
        if not isinstance(value, DecodedRow):
            rows.append(value)  # an error row already
            continue
        result = next(results)
        heat = None
        if explainer is not None:
            try:
                heat = explainer.rust_heatmap(value.image, value.source)
            except Exception:  # noqa: BLE001 - the explanation is extra; the prediction stands without it
                heat = None
        mask = result.get("mask")
        rows.append(ResultRow(
            value.row_id, value.source, DONE, label=result["label"], is_rust=result["is_rust"],
            confidence=result["confidence"], rust_probability=result["rust_probability"],
            rust_area=result.get("rust_area"), seconds=value.seconds + each, image_size=value.original_size,
            model=predictor.name, checkpoint=predictor.checkpoint, thumbnail=value.thumbnail,
            preview=value.preview, heat=heat, mask=None if mask is None else _as_array(mask),
            mask_threshold=threshold))
    return rows


def predict_row(predictor, explainer, row_id: int, source: str) -> ResultRow:
    """One file to one finished row: prediction, timing, pictures; unreadable files to an error row."""
    if predictor is None:
        return ResultRow(row_id, source, ERROR, error="no model loaded (File > Load model...)", unreadable=False,
                         thumbnail=render.placeholder(render.THUMB))
    return finish_batch(predictor, explainer, [decode_for_row(predictor, row_id, source)])[0]


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
        data = meta.get("data") or {}
        specs = [str(s["spec"]) for s in data.get("sources") or []] or [str(data.get("spec") or "")]
        names = [Path(s).name or s for s in specs if s]
        source = f" on {' + '.join(names)}" if names else ""  # every source: validation spans them all
        parts.append("validation " + ", ".join(scores) + source)
    calibration = meta.get("calibration") or {}
    if calibration and calibration.get("fitted", True):
        parts.append("calibrated")
    path = Path(meta["path"])
    parts.append(f"{path.parent.name}/{path.name}")
    return " · ".join(parts)

