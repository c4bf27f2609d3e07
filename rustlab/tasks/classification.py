"""Image-level classification: is there rust in this photo, and how sure are we."""

from __future__ import annotations

import numpy as np

from rustlab.tasks.base import Task, confusion_lines
from rustlab.tasks.results import classification_results


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ClassificationTask(Task):
    name = "classification"
    target = "label"
    requires_masks = False
    monitor = "accuracy"
    explainable = True

    def model_overrides(self, class_names):
        return {"num_classes": len(class_names)}

    def loss(self, outputs, targets, *, label_smoothing: float = 0.0):
        import torch.nn.functional as F

        # float32 even under autocast: small logit differences matter for the softmax
        return F.cross_entropy(outputs.float(), targets, label_smoothing=label_smoothing)

    def new_meter(self, rust_index: int, calibration: dict | None = None):
        from rustlab.tasks.classification_meter import ClassificationMeter

        return ClassificationMeter(rust_index, calibration)

    def calibrate(self, outputs, targets, rust_targets) -> dict:
        """Temperature scaling fitted by NLL on (validation) logits; stored in the checkpoint."""
        from rustlab.tasks.calibration import expected_calibration_error, fit_temperature, nll, top_label

        logits = outputs.detach().float().cpu().numpy()
        labels = targets.detach().long().cpu().numpy()
        known = labels >= 0
        logits, labels = logits[known], labels[known]
        if len(labels) == 0:
            return {"method": "none", "temperature": 1.0, "n": 0}
        t = fit_temperature(logits, labels)
        return {
            "method": "temperature",
            "temperature": t,
            "n": int(len(labels)),
            "nll_before": nll(logits, labels),
            "nll_after": nll(logits, labels, t),
            "ece_before": expected_calibration_error(*top_label(logits, labels)),
            "ece_after": expected_calibration_error(*top_label(logits, labels, t)),
        }

    def interpret_numpy(self, outputs, meta: dict) -> list[dict]:
        """Per image: predicted class, its (calibrated) confidence, and the probability of rust."""
        from rustlab.tasks.calibration import temperature_of

        logits = np.asarray(outputs, dtype=np.float32)
        probs = _softmax(logits / np.float32(temperature_of(meta.get("calibration"))))
        # the label from the logits: the temperature never changes it
        return classification_results(probs, logits.argmax(axis=1), meta)

    def metric_details(self, metrics: dict) -> list[str]:
        lines = confusion_lines(metrics)
        if "ece" in metrics:
            after = (f"{metrics['ece_uncalibrated']:.4f} uncalibrated -> {metrics['ece']:.4f} with temperature "
                     f"{metrics['temperature']:.3g} (fitted on validation)" if "ece_uncalibrated" in metrics
                     else f"{metrics['ece']:.4f} (the checkpoint has no temperature)")
            lines.append(f"expected calibration error (15 bins): {after}")
        return lines
