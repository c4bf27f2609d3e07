"""The Predictor: load a checkpoint once, preprocess exactly as in training, predict.

The one prediction path behind `rustlab predict`, `rustlab evaluate` and the GUI.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator

from rustlab.errors import ImageError
# Prediction and the folder pipeline live in predict_pipeline (torch-free, shared with the ONNX
# predictor); re-exported here, where callers have always found them.
from rustlab.predict_pipeline import Prediction, image_name, list_images, make_prediction, predict_stream

__all__ = ["Prediction", "Predictor", "list_images", "make_prediction", "predict_batched"]


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
        return make_prediction(result, name or image_name(image), size, time.perf_counter() - start)

    def predict_many(self, images: Iterable, batch_size: int = 16, workers: int | None = None,
                     prefetch: int | None = None) -> Iterator[Prediction | ImageError]:
        """Predictions in input order; an unreadable file yields its ImageError instead.

        ``workers`` threads decode ahead while the model runs (rustlab.predict_pipeline);
        0 decodes on this thread between batches."""
        return predict_stream(images, self.preprocess, self.run_batch, batch_size, workers, prefetch)

    def run_batch(self, tensors: list) -> list[dict]:
        """The task's per-image result dicts for a list of ``preprocess`` outputs (one forward)."""
        import torch

        return self.task.interpret(self.forward(torch.stack(tensors)), self.meta)


def predict_batched(images: Iterable, preprocess, run, batch_size: int, workers: int | None = 0):
    """The loop before the pipeline (decode on this thread, then the batch), kept for plugins that
    call it; ``predict_stream`` with ``workers=0``."""
    return predict_stream(images, preprocess, run, batch_size, workers)
