"""Per-pixel rust segmentation: where is the rust, how much of the photo, and is there any.

Outputs are one logit per pixel (N x 1 x H x W); targets are 0/1 masks (N x 1 x H x W uint8).
A model may add a second channel, constant over the pixels: the logit of an image-call head (a
head on its own features, fitted after training; rustlab.training.image_call). Every path that
carries a mask (flips, ONNX, the predictor) then carries the call with it.
Pixel metrics count the rust class only (background pixels would inflate any accuracy) and
are micro-averaged: TP/FP/FN are summed over every pixel of the split, then turned into
ratios once, so a large rust area weighs more than a speck and an image with no rust at all
(a negative) still counts its false positives. The image-level call (for inspectors: "does
this photo show rust?") is the head's where the model has one, else the rust area above a
threshold chosen on validation.

A rust photo without a drawn mask (from a classification source mixed into training) carries a
``WEAK_RUST`` mask: the loss only asks that some of it be rust, and the pixel metrics skip it.
"""

from __future__ import annotations

import numpy as np

from rustlab.tasks.base import CLASSIFICATION_COLUMNS, Task, confusion_lines
from rustlab.tasks.results import segmentation_results
from rustlab.tasks.segmentation_defaults import AREA_FLOOR, DEFAULT_AREA_THRESHOLD, DEFAULT_SLOPE, PIXEL_THRESHOLD

PIXEL_COLUMNS = {"iou": "iou", "dice": "dice", "pixel_precision": "px_prec", "pixel_recall": "px_rec"}


class SegmentationTask(Task):
    name = "segmentation"
    target = "mask"
    requires_masks = True
    learns_from_image_labels = True  # rust photos without masks: WEAK_RUST (segmentation_defaults)
    monitor = "iou"
    dense_output = True

    def model_overrides(self, class_names):
        return {}  # one rust logit per pixel whatever the class names

    def loss(self, outputs, targets, *, label_smoothing: float = 0.0):
        """BCE + soft Dice (float32). ``label_smoothing`` is a classification option: ignored."""
        from rustlab.tasks.segmentation_metrics import segmentation_loss

        if targets is None or targets.dim() != outputs.dim():
            return None  # no masks (image labels only): nothing to score per pixel
        return segmentation_loss(outputs, targets)

    def new_meter(self, rust_index: int, calibration: dict | None = None):
        from rustlab.tasks.segmentation_metrics import SegmentationMeter

        return SegmentationMeter(rust_index, calibration)

    def calibrate(self, outputs, targets, rust_targets) -> dict:
        from rustlab.tasks.segmentation_metrics import fit_area_calibration, pixel_stats

        area, _, _ = pixel_stats(outputs, None)
        return fit_area_calibration(area, rust_targets)

    def for_source(self, has_masks: bool) -> Task:
        """Data without masks (e.g. a rust / no_rust folder) is scored by the image-level call."""
        return self if has_masks else ImageLevelSegmentationTask()

    def interpret_numpy(self, outputs, meta: dict) -> list[dict]:
        """Per image: the rust mask (probabilities), the rust area (pixels at or above the pixel
        threshold) and the image-level call (the image-call head's, else area above the threshold
        chosen on validation)."""
        cal = meta.get("calibration") or {}
        area_threshold = float(cal.get("area_threshold", DEFAULT_AREA_THRESHOLD))
        slope = float(cal.get("area_slope", DEFAULT_SLOPE))
        outputs = np.asarray(outputs, dtype=np.float32)
        with np.errstate(over="ignore"):  # exp of a very negative logit is inf: probability 0, as intended
            probs = 1.0 / (1.0 + np.exp(-outputs[:, :1]))
            pixel_threshold = float(cal.get("pixel_threshold", PIXEL_THRESHOLD))
            area = (probs >= pixel_threshold).reshape(len(probs), -1).mean(axis=1)
            if outputs.shape[1] > 1:  # the image-call head's logit, constant over the pixels
                p_rust = 1.0 / (1.0 + np.exp(-outputs[:, 1].reshape(len(outputs), -1).mean(axis=1)))
                return segmentation_results(area, p_rust, probs[:, 0], None, meta)
        score = lambda a: np.log10(np.float64(a) + AREA_FLOOR)  # noqa: E731 - decades of rust area
        p_rust = 1.0 / (1.0 + np.exp(-slope * (score(area) - score(area_threshold))))
        return segmentation_results(area, p_rust, probs[:, 0], area_threshold, meta)

    def metric_columns(self) -> dict[str, str]:
        return {**PIXEL_COLUMNS, **CLASSIFICATION_COLUMNS}  # rust-class pixel metrics first

    def metric_notes(self, metrics: dict) -> list[str]:
        call = metrics.get("image_call")
        if not call:
            return []
        pixels = ("pixel metrics over all pixels of the split (rust class); " if "iou" in metrics
                  else "no masks in this data: image-level call only; ")
        if "area_threshold" not in call:
            return [f"{pixels}accuracy..roc_auc: the model's image-call head (rust when p >= 0.5)"]
        source = ("threshold chosen on validation)" if call["threshold_from"] == "validation"
                  else "default threshold: the checkpoint has no calibration)")
        return [f"{pixels}accuracy..roc_auc: image called rust when its rust area "
                f"> {100 * call['area_threshold']:.2f}% ({source}"]

    def metric_details(self, metrics: dict) -> list[str]:
        return confusion_lines(metrics)  # of the image-level call


class ImageLevelSegmentationTask(SegmentationTask):
    """A segmentation model scored on image labels: the DecodedSet's labels are its targets."""

    target = "label"
    requires_masks = False
    monitor = "accuracy"
