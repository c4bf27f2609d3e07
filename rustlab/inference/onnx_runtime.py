"""Predict with an exported ONNX model: onnxruntime, NumPy and PIL only (no torch import).

Preprocessing is the Predictor's: rustlab.data.images decodes and resizes exactly as in training,
then (pixel / 255 - mean) / std with the mean and std recorded in the model's metadata. Outputs
are interpreted by the task's own ``interpret_numpy``, the code behind the PyTorch Predictor
too, so `predict --onnx` and `predict --checkpoint` agree. Built-in tasks load without torch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from rustlab.errors import CheckpointError, ImageError, RustlabError
from rustlab.inference.pipeline import Prediction, image_name, make_prediction, predict_stream

_REQUIRED = ("rustlab_format", "model", "task", "class_names", "rust_index", "preprocessing")


def read_onnx_metadata(session, path) -> dict:
    """rustlab's metadata_props of an ONNX model, decoded into a checkpoint-like ``meta`` dict."""
    from rustlab.inference.export import ONNX_FORMAT, ONNX_FORMAT_VERSION

    props = session.get_modelmeta().custom_metadata_map
    missing = [k for k in _REQUIRED if k not in props]
    if missing or props.get("rustlab_format") != ONNX_FORMAT:
        raise CheckpointError(f"{path}: an ONNX model without rustlab metadata (missing "
                              f"{', '.join(missing) or 'rustlab_format'}); export it with `rustlab export`")
    version = props.get("rustlab_format_version", "0")
    if not version.isdigit() or int(version) > ONNX_FORMAT_VERSION:
        raise CheckpointError(f"{path}: exported by rustlab {props.get('rustlab_version')} (format {version!r}); "
                              "upgrade rustlab to use it")
    try:
        meta = {
            "model": props["model"],
            "task": props["task"],
            "class_names": json.loads(props["class_names"]),
            "rust_index": int(props["rust_index"]),
            "preprocessing": json.loads(props["preprocessing"]),
            "calibration": json.loads(props.get("calibration", "null")),
            "model_config": json.loads(props.get("model_config", "{}")),
            "target": props.get("target", "label"),
        }
        pre = meta["preprocessing"]
        # everything the hot path indexes, checked once here rather than failing per image
        if not (0 <= meta["rust_index"] < len(meta["class_names"]) and int(pre["image_size"]) >= 1
                and len(pre["mean"]) == 3 and len(pre["std"]) == 3):
            raise ValueError("class names, rust index or preprocessing out of range")
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: damaged rustlab metadata ({exc})") from None
    meta["path"] = str(path)
    return meta


def _providers(ort, device: str) -> list[str]:
    device = (device or "auto").strip().lower()
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if device == "cuda" or device.startswith("cuda:"):
        if "CUDAExecutionProvider" not in available:
            raise RustlabError(f"--device {device}: this onnxruntime has no CUDA provider "
                               "(pip install onnxruntime-gpu, or use --device cpu)")
        index = device.partition(":")[2] or "0"
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    raise RustlabError(f"--device {device}: expected auto, cpu, cuda or cuda:N")


class OnnxPredictor:
    """Same interface as rustlab.inference.predictor.Predictor (predict, predict_many, class_names, name)."""

    def __init__(self, path, device: str = "auto"):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RustlabError("--onnx needs onnxruntime: pip install onnxruntime") from None
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such ONNX model" + (" (a folder)" if path.is_dir() else ""))
        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: a user sees rustlab's one line, not ORT's log
        try:
            self.session = ort.InferenceSession(str(path), options, providers=_providers(ort, device))
        except RustlabError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors are its own types
            first = str(exc).strip().splitlines()
            raise CheckpointError(f"{path}: not a readable ONNX model ({first[0] if first else type(exc).__name__})") \
                from None
        self.meta = read_onnx_metadata(self.session, path)
        from rustlab.registry import get_task

        self.task = get_task(self.meta["task"])
        pre = self.meta["preprocessing"]
        self.image_size = int(pre["image_size"])
        self._mean = np.asarray(pre["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(pre["std"], dtype=np.float32).reshape(1, 3, 1, 1)
        self.class_names = list(self.meta["class_names"])
        self.checkpoint = str(path)
        self._input = self.session.get_inputs()[0].name

    @property
    def name(self) -> str:
        return f"{self.meta['model']} ({Path(self.checkpoint).name}, ONNX)"

    def preprocess(self, image, name: str | None = None) -> tuple[np.ndarray, tuple]:
        """(uint8 3 x S x S array, (width, height) of the decoded image): the Predictor's pixels."""
        from rustlab.data.images import open_rgb, resize_square

        img = open_rgb(image, draft_size=self.image_size, name=name)
        return resize_square(img, self.image_size).transpose(2, 0, 1), img.size

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Model outputs for a uint8 N x 3 x S x S batch (normalised as in training)."""
        x = (batch.astype(np.float32) / np.float32(255.0) - self._mean) / self._std
        return self.session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def predict(self, image, name: str | None = None) -> Prediction:
        start = time.perf_counter()
        array, size = self.preprocess(image, name)
        result = self.task.interpret_numpy(self.forward(array[None]), self.meta)[0]
        return make_prediction(result, name or image_name(image), size, time.perf_counter() - start)

    def predict_many(self, images: Iterable, batch_size: int = 16, workers: int | None = None,
                     prefetch: int | None = None) -> Iterator[Prediction | ImageError]:
        """Predictions in input order; an unreadable file yields its ImageError instead. Decoding
        runs ahead in ``workers`` threads (rustlab.inference.pipeline, as the PyTorch Predictor)."""
        return predict_stream(images, self.preprocess, self.run_batch, batch_size, workers, prefetch)

    def run_batch(self, arrays: list) -> list[dict]:
        """The task's per-image result dicts for a list of ``preprocess`` outputs (one session run)."""
        return self.task.interpret_numpy(self.forward(np.stack(arrays)), self.meta)
