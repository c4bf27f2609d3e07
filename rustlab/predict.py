"""The Predictor: load a checkpoint once, preprocess exactly as in training, predict.

The one prediction path behind `rustlab predict`, `rustlab evaluate` and the GUI.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

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
        d = {k: v for k, v in self.__dict__.items() if k != "mask"}
        return d


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


class Predictor:
    def __init__(self, checkpoint, device: str = "auto"):
        from rustlab.checkpoint import build_model_from_checkpoint
        from rustlab.device import resolve_device
        from rustlab.registry import get_task

        self.device = resolve_device(device)
        model, self.meta = build_model_from_checkpoint(checkpoint)
        self.model = model.to(self.device).eval()
        self.task = get_task(self.meta["task"])
        self.image_size = int(self.meta["preprocessing"]["image_size"])
        self.class_names = list(self.meta["class_names"])
        self.checkpoint = self.meta["path"]

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
            return self.model(normalize(batch.to(self.device), pre["mean"], pre["std"])).float()

    def predict(self, image, name: str | None = None) -> Prediction:
        """Predict one image: a path, bytes or a PIL image. Raises ImageError for unreadable files."""
        start = time.perf_counter()
        tensor, size = self.preprocess(image, name)
        result = self.task.interpret(self.forward(tensor[None]), self.meta)[0]
        return make_prediction(result, name or _name(image), size, time.perf_counter() - start)

    def predict_many(self, images: Iterable, batch_size: int = 16) -> Iterator[Prediction | ImageError]:
        """Predictions in input order; an unreadable file yields its ImageError instead."""
        import torch

        def run(tensors):
            return self.task.interpret(self.forward(torch.stack(tensors)), self.meta)

        return predict_batched(images, self.preprocess, run, batch_size)


def make_prediction(result: dict, source: str, size, seconds: float) -> Prediction:
    """A Prediction from a task's per-image result dict (``interpret``) and its timing."""
    return Prediction(source=source, seconds=seconds, image_size=tuple(size), **result)


def predict_batched(images: Iterable, preprocess, run, batch_size: int) -> Iterator[Prediction | ImageError]:
    """The batching loop of every predictor (PyTorch and ONNX Runtime).

    ``preprocess(image, name) -> (array, size)`` may raise ImageError, which is yielded in place
    of that image's Prediction; ``run(list of arrays) -> list of result dicts`` predicts a batch."""
    pending = []

    def flush():
        if not pending:
            return []
        start = time.perf_counter()
        results = run([array for _, array, _ in pending])
        each = (time.perf_counter() - start) / len(pending)
        out = [make_prediction(r, src, size, each) for (src, _, size), r in zip(pending, results)]
        pending.clear()
        return out

    for image in images:
        name = _name(image)
        try:
            array, size = preprocess(image, name)
        except ImageError as exc:
            yield from flush()
            yield exc
            continue
        pending.append((name, array, size))
        if len(pending) >= batch_size:
            yield from flush()
    yield from flush()


def _name(image) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return getattr(image, "filename", None) or "<image>"
