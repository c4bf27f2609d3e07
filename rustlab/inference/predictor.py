"""The Predictor: load a checkpoint once, preprocess exactly as in training, predict.

The one prediction path behind `rustlab predict`, `rustlab evaluate` and the GUI.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterable, Iterator

from rustlab.errors import ImageError
# Prediction and the folder pipeline live in predict_pipeline (torch-free, shared with the ONNX
# predictor); re-exported here, where callers have always found them.
from rustlab.inference.pipeline import (Prediction, default_workers, image_name, list_images, make_prediction,
                                      predict_stream)

__all__ = ["Prediction", "Predictor", "list_images", "make_prediction", "predict_batched"]


class Predictor:
    def __init__(self, checkpoint, device: str = "auto", tta: str | None = None, engine: str = "auto",
                 threads: int | None = None, photos: int | None = None):
        """``tta``: a segmenter's test-time flips (rustlab.inference.tta); None keeps the checkpoint's.
        ``engine``: what runs the forward pass (rustlab.inference.engine): "auto" (onnxruntime on a
        cached export on CPU, else PyTorch; ``note`` says why where it fell back), "onnx" or "torch".
        ``threads``: onnxruntime's intra-op threads (the GUI leaves a core to its window).
        ``photos``: the job's size where known: a small job does not wait for a first export."""
        from rustlab.device import resolve_device
        from rustlab.inference.layout import wants_channels_last
        from rustlab.inference.loading import build_model_from_checkpoint
        from rustlab.registry import get_task

        self.device = resolve_device(device)
        model, self.meta = build_model_from_checkpoint(checkpoint, tta=tta)
        self.model = model.to(self.device).eval()
        self.task = get_task(self.meta["task"])
        self.image_size = int(self.meta["preprocessing"]["image_size"])
        self.class_names = list(self.meta["class_names"])
        self.checkpoint = self.meta["path"]
        self.threads, self.photos = threads, photos
        self.channels_last = False
        self._choose(engine)
        if self.engine == "pytorch" and wants_channels_last("auto", self.meta["model"], self.device, "predict"):
            self.use_channels_last()  # NHWC where it measured faster (rustlab.inference.layout): same numbers

    def _choose(self, engine: str) -> None:
        """Set ``runner`` (what ``forward`` runs), ``engine`` ("onnxruntime" or "pytorch") and ``note``."""
        import torch

        from rustlab.inference.engine import choose_runner

        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # PyTorch runs ``model`` with its BatchNorms folded into their convolutions
        # (rustlab.inference.batchnorm_fold: the same outputs, faster); ``model`` itself stays as
        # built, for Grad-CAM, which reads a convolution's output before its BatchNorm
        self.runner, self.note = choose_runner(self.checkpoint, self.model, self.meta, self.device, engine,
                                               self.channels_last, self.threads, self.photos)
        self.engine = getattr(self.runner, "engine", "pytorch")

    def use_channels_last(self) -> None:
        """Run in PyTorch, in NHWC layout, from now on (the model and what ``forward`` runs)."""
        self.channels_last, note = True, self.note
        self._choose("torch")
        self.note = note  # why it runs in PyTorch, where auto fell back

    @property
    def name(self) -> str:
        return f"{self.meta['model']} ({Path(self.checkpoint).parent.name}/{Path(self.checkpoint).name})"

    def preprocess(self, image, name: str | None = None):
        """(uint8 3xSxS tensor, (width, height) of the decoded image; JPEGs may decode reduced)."""
        import torch

        from rustlab.data.images import open_rgb, resize_square

        img = open_rgb(image, draft_size=self.image_size, name=name)
        return torch.from_numpy(resize_square(img, self.image_size)).permute(2, 0, 1).contiguous(), img.size

    def forward(self, batch):
        """Normalised model outputs for a uint8 N x 3 x S x S batch."""
        import torch

        from rustlab.data.transforms import normalize
        from rustlab.device import autocast_context

        pre = self.meta["preprocessing"]
        with torch.inference_mode(), autocast_context(self.device):
            x = normalize(batch.to(self.device), pre["mean"], pre["std"])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.runner(x).float()

    def predict(self, image, name: str | None = None) -> Prediction:
        """Predict one image: a path, bytes or a PIL image. Raises ImageError for unreadable files."""
        start = time.perf_counter()
        tensor, size = self.preprocess(image, name)
        result = self.task.interpret(self.forward(tensor[None]), self.meta)[0]
        return make_prediction(result, name or image_name(image), size, time.perf_counter() - start)

    def predict_many(self, images: Iterable, batch_size: int = 16, workers: int | None = None,
                     prefetch: int | None = None) -> Iterator[Prediction | ImageError]:
        """Predictions in input order; an unreadable file yields its ImageError instead.

        ``workers`` threads decode ahead while the model runs (rustlab.inference.pipeline);
        0 decodes on this thread between batches."""
        workers = default_workers() if workers is None else workers
        if workers == 0 or self.engine != "pytorch" or self.device.type != "cpu":
            return predict_stream(images, self.preprocess, self.run_batch, batch_size, workers, prefetch)
        tuner = _PipelineTuner(workers)

        def run(tensors):
            # the tuner's thread count holds inside this forward only: the caller's code between
            # two results runs with torch's threads as the caller set them
            with torch_threads(tuner.threads):
                return self.run_batch(tensors)

        return predict_stream(images, self.preprocess, run, batch_size, workers, prefetch, on_batch=tuner,
                              mode=tuner.mode)

    def run_batch(self, tensors: list) -> list[dict]:
        """The task's per-image result dicts for a list of ``preprocess`` outputs (one forward)."""
        import torch

        return self.task.interpret(self.forward(torch.stack(tensors)), self.meta)


def predict_batched(images: Iterable, preprocess, run, batch_size: int, workers: int | None = 0):
    """The loop before the pipeline (decode on this thread, then the batch), kept for plugins that
    call it; ``predict_stream`` with ``workers=0``."""
    return predict_stream(images, preprocess, run, batch_size, workers)


class _PipelineTuner:
    """How the pipeline shares the CPU between decoding and the model: decoding inline (on this
    thread between batches, the loop before the pipeline) or decode threads ahead with all of
    torch's threads or with as many fewer as there are decode threads (on 2 cores: 2 and 1).

    Every HOLD batches it measures again, inline first: it times a few batches and the model's
    share of them (the first batch after a change of setting is not timed, nor are batches that
    still use files the threads decoded ahead). When decoding costs less than INLINE_SHARE of the
    model's time, decoding inline is kept without trying the threaded settings; otherwise each is
    timed on the run itself and the one with the most images per second is kept (what is faster
    changes with the photos and with what else runs on the machine).

    Measured on 2 idle cores (experiments/speed/folder_predict.md): a 12 MP JPEG costs ~10x the
    96 px CNN's forward, and decode threads ahead run at 1.7x the old loop; when the model's
    forward already keeps both cores busy (U-Net, pretrained model; decoding 0.1-0.5 of the
    model's time), threads ahead never beat decoding inline, and probing them (one setting runs
    the model on one thread, at half speed) left the pipeline at 0.91x the old loop."""

    PROBE = 2  # batches timed per setting
    HOLD = 100  # batches run with the choice before measuring again
    INLINE_SHARE = 0.5  # decode time / model time below which inline decoding is kept unprobed

    def __init__(self, decode_threads: int):
        import torch

        from rustlab.inference.pipeline import DecodeMode

        self.full = torch.get_num_threads()
        settings = [(True, self.full), (False, self.full), (False, max(1, self.full - decode_threads))]
        self.candidates = list(dict.fromkeys(settings))
        self.mode = DecodeMode()
        self.current = (False, self.full)
        self.threads = self.full  # torch's threads during a forward (set by predict_many's run only)
        self._set(self.candidates[0])
        self.rates: dict[tuple, float] = {}
        self.index, self.count, self.probing, self.mark, self.model_s = 0, 0, True, None, 0.0
        self.choices: list[tuple] = []  # every setting kept, in order (read by the speed experiment)

    def _set(self, setting: tuple) -> None:
        inline, threads = setting
        self.mode.inline = inline
        self.threads = threads
        self.current = setting

    def __call__(self, images_done: int, model_seconds: float = 0.0, now: float | None = None) -> None:
        """After each batch: images predicted so far and that batch's forward time."""
        now = time.perf_counter() if now is None else now
        if self.mark is None or (self.mode.inline and self.mode.pending):
            # not timed: the first batch, the first after a change of setting (decode threads
            # start with nothing decoded ahead), or files decoded ahead still being used inline
            self.mark, self.count, self.model_s = (now, images_done), 0, 0.0
            return
        self.count += 1
        self.model_s += model_seconds
        if not self.probing:
            if self.count >= self.HOLD:
                self.probing, self.index, self.rates = True, 0, {}
                self._change(self.candidates[0], now, images_done)
            return
        if self.count < self.PROBE:
            return
        wall = max(now - self.mark[0], 1e-9)
        self.rates[self.current] = (images_done - self.mark[1]) / wall
        if self.index == 0 and self.current[0] and wall - self.model_s < self.INLINE_SHARE * self.model_s:
            keep = self.current  # decoding is a small share: threads ahead cannot pay for themselves
        elif self.index + 1 < len(self.candidates):
            self.index += 1
            self._change(self.candidates[self.index], now, images_done)
            return
        else:
            keep = max(self.rates, key=self.rates.get)
        self.choices.append(keep)
        self.probing = False
        self._change(keep, now, images_done)

    def _change(self, setting: tuple, now: float, images_done: int) -> None:
        """Switch to ``setting``; time from here, or from the next batch if the setting changed."""
        changed = setting != self.current
        self._set(setting)
        self.mark = None if changed else (now, images_done)
        self.count, self.model_s = 0, 0.0


@contextlib.contextmanager
def torch_threads(threads: int):
    """torch's intra-op thread count set to ``threads`` inside the block, restored after it (the
    setting is process-wide: a library must not leave it changed for its caller)."""
    import torch

    before = torch.get_num_threads()
    if threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
