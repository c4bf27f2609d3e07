"""Folder prediction as a pipeline: decode ahead in threads, batched forward, results in input order.

A camera photo costs more to decode than a small model costs to run (issue 16: a 12 MP JPEG
decodes at ~57 img/s on one core, the 96 px CNN runs at ~180 img/s), so decoding one file after
another on the thread that runs the model leaves the other cores idle. Here a small thread pool
decodes and resizes the next files (PIL releases the GIL while it decodes and resizes; JPEGs
decode in draft mode at the model's size) while the calling thread runs the model on the
current batch. At most ``prefetch`` files are in flight (a bounded window, so memory does not
grow with the folder), and results come out in input order: a slow file holds back the ones
after it rather than reordering them.

No torch import: the ONNX predictor (torch-free) runs through the same code as the PyTorch one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from rustlab.errors import ImageError


@dataclass
class Prediction:
    source: str
    label: str
    is_rust: bool
    confidence: float  # probability of the predicted label (calibrated where the checkpoint has a temperature)
    rust_probability: float
    probabilities: dict = field(default_factory=dict)
    seconds: float = 0.0
    mask: Any = None  # segmentation: HxW float32 rust probability (model input size)
    rust_area: float | None = None  # segmentation: fraction of pixels called rust
    image_size: tuple | None = None  # (width, height) of the decoded image

    def to_dict(self) -> dict:
        """Every field but the mask; a segmenter's also its rust grades (rustlab.inference.grade)."""
        out = {k: v for k, v in self.__dict__.items() if k != "mask"}
        if self.rust_area is not None:
            from rustlab.inference.grade import grades

            out.update(grades(self.rust_area))
        return out


def make_prediction(result: dict, source: str, size, seconds: float) -> Prediction:
    """A Prediction from a task's per-image result dict (``interpret``) and its timing."""
    return Prediction(source=source, seconds=seconds, image_size=tuple(size), **result)


def list_images(paths: Iterable) -> list[str]:
    """Expand folders (recursively, image extensions only, sorted); keep files as given."""
    from rustlab.data.images import is_image_name

    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not is_image_name(p):
            out.extend(str(f) for f in sorted(p.rglob("*")) if f.is_file() and is_image_name(f))
        else:
            out.append(str(p))
    return out


def image_name(image) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return getattr(image, "filename", None) or "<image>"


def default_workers() -> int:
    """Decode threads: one per core, at most 4 (idle threads sleep while the window is full).
    On 2 shared cores, 1 and 2 threads measured within noise of each other
    (experiments/speed/folder_predict.md); one per core lets decoding use every core the model
    leaves idle on a quiet machine."""
    return max(1, min(4, os.cpu_count() or 1))


class DecodeMode:
    """Whether the decode threads work ahead (``inline = False``) or the calling thread decodes
    each file itself between batches (``inline = True``). A tuner may flip it during a run: when
    the model already keeps every core busy, decoding beside it only slows it down."""

    inline: bool = False
    pending: int = 0  # files decoded (or decoding) ahead and not yet handed out: set by decoded_batches


def decoded_batches(images: Iterable, decode: Callable, batch_size: int, workers: int | None = None,
                    prefetch: int | None = None, mode: DecodeMode | None = None) -> Iterator[list[tuple[str, Any]]]:
    """Lists of (name, ``decode(image, name)`` or its ImageError), in input order.

    Each list holds up to ``batch_size`` decoded images (error entries ride along without counting,
    so one bad file does not break a batch in two). ``workers`` threads decode up to ``prefetch``
    files ahead of the consumer; ``workers=0`` decodes on the calling thread, one file after the
    other (the path before the pipeline, kept for comparison and for callers that must not start
    threads), and so does ``mode.inline`` while it is set (files already in flight are used
    first). Closing the iterator early cancels the files not yet started."""
    batch_size = max(1, int(batch_size))
    workers = default_workers() if workers is None else max(0, int(workers))

    def attempt(image, name):
        try:
            return decode(image, name)
        except ImageError as exc:
            return exc

    def in_order():
        """(name, decoded value or ImageError) of every image, in input order."""
        if workers == 0:
            for image in images:
                name = image_name(image)
                yield name, attempt(image, name)
            return
        # enough in flight that the threads decode the next batch while the model runs this one
        window: deque = deque()
        source = iter(images)
        ahead = max(prefetch or 2 * batch_size + workers, workers + 1)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="rustlab-decode")
        try:
            def fill():
                while len(window) < ahead:
                    image = next(source, _END)
                    if image is _END:
                        return
                    name = image_name(image)
                    window.append((name, pool.submit(attempt, image, name)))

            while True:
                ahead_ok = mode is None or not mode.inline
                if ahead_ok:
                    fill()
                if window:
                    name, future = window.popleft()
                    if ahead_ok:
                        fill()
                    if mode is not None:
                        mode.pending = len(window)
                    yield name, future.result()
                    continue
                image = next(source, _END)  # inline: this thread decodes the next file itself
                if image is _END:
                    return
                name = image_name(image)
                yield name, attempt(image, name)
        finally:
            # a consumer that stops early (an exception, a closed generator, GUI Stop) leaves no work behind
            for _, future in window:
                future.cancel()
            pool.shutdown(wait=True)

    batch, good = [], 0
    with contextlib.closing(in_order()) as stream:  # closing this generator closes the decoder's too
        for name, value in stream:
            batch.append((name, value))
            good += not isinstance(value, ImageError)
            if good >= batch_size:
                yield batch
                batch, good = [], 0
    if batch:
        yield batch


_END = object()


def predict_stream(images: Iterable, preprocess: Callable, run: Callable, batch_size: int = 16,
                   workers: int | None = None, prefetch: int | None = None,
                   on_batch: Callable | None = None, mode: DecodeMode | None = None) -> Iterator[Prediction | ImageError]:
    """The prediction loop of every predictor (PyTorch and ONNX Runtime).

    ``preprocess(image, name) -> (array, (width, height))`` runs in the decode threads and may
    raise ImageError, which is yielded in place of that image's Prediction; ``run(list of arrays)
    -> list of result dicts`` predicts a batch on the calling thread. Input order is kept.
    ``on_batch(images_done, model_seconds)`` is called after each batch's forward with the number
    of images predicted so far and that forward's time (e.g. to retune threads or flip ``mode``,
    the DecodeMode of the decoding)."""
    done = 0
    for batch in decoded_batches(images, preprocess, batch_size, workers, prefetch, mode):
        ready = [(name, value) for name, value in batch if not isinstance(value, ImageError)]
        results, each = [], 0.0
        if ready:
            start = time.perf_counter()
            results = run([array for _, (array, _size) in ready])
            seconds = time.perf_counter() - start
            each = seconds / len(ready)
            done += len(ready)
            if on_batch is not None:
                on_batch(done, seconds)
        results = iter(results)
        for name, value in batch:
            if isinstance(value, ImageError):
                yield value
            else:
                yield make_prediction(next(results), name, value[1], each)
