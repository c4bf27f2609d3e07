"""Image-level classification: is there rust in this photo, and how sure are we."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rustlab.metrics import binary_metrics
from rustlab.task_results import classification_results


class ClassificationMeter:
    def __init__(self, rust_index: int, calibration: dict | None = None):
        from rustlab.calibration import temperature_of

        self.rust_index = rust_index
        self.calibration = calibration or {}
        self.temperature = temperature_of(self.calibration)
        self.logits: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.rust: list[torch.Tensor] = []
        self.loss_sum = 0.0
        self.count = 0

    def update(self, outputs, targets, rust_targets, loss=None):
        logits = outputs.detach().float().cpu()
        self.logits.append(logits)
        self.targets.append(targets.detach().long().cpu())
        self.rust.append(rust_targets.detach().bool().cpu())
        if loss is not None:
            self.loss_sum += float(loss) * len(logits)
            self.count += len(logits)

    def compute(self) -> dict:
        if not self.logits:
            return {"n": 0}
        logits = torch.cat(self.logits)
        rust = torch.cat(self.rust)
        # argmax of the logits: the label a temperature can never change
        pred_rust = logits.argmax(dim=1) == self.rust_index
        # ROC-AUC ranks by the log-probability of rust: a softmax saturates to exactly 0 or 1 in
        # float32 for confident images and would turn them into ties. Taken at T = 1, so the AUC
        # is the same with or without calibration.
        rust_score = logits.double().log_softmax(dim=1)[:, self.rust_index]
        result = binary_metrics(pred_rust, rust, rust_score)
        if self.count:
            result["loss"] = self.loss_sum / self.count
        result.update(self._calibration_metrics(logits.numpy(), torch.cat(self.targets).numpy()))
        return result

    def _calibration_metrics(self, logits, targets) -> dict:
        """``ece`` of the confidences as shown (calibrated where there is a temperature); with a
        temperature also ``ece_uncalibrated``; ``reliability`` holds the bins for a diagram."""
        from rustlab.calibration import ECE_BINS, ece_from_bins, reliability_bins, top_label

        known = targets >= 0  # unlabelled images count for nothing here
        logits, targets = logits[known], targets[known]
        raw = reliability_bins(*top_label(logits, targets))
        if not self.calibration:
            return {"ece": ece_from_bins(raw), "reliability": {"bins": ECE_BINS, "uncalibrated": raw}}
        calibrated = reliability_bins(*top_label(logits, targets, self.temperature))
        return {"ece": ece_from_bins(calibrated), "ece_uncalibrated": ece_from_bins(raw),
                "temperature": self.temperature,
                "reliability": {"bins": ECE_BINS, "uncalibrated": raw, "calibrated": calibrated}}


class ClassificationTask:
    name = "classification"
    target = "label"
    monitor = "accuracy"

    def model_overrides(self, class_names):
        return {"num_classes": len(class_names)}

    def loss(self, outputs, targets, label_smoothing: float = 0.0):
        # float32 even under autocast: small logit differences matter for the softmax
        return F.cross_entropy(outputs.float(), targets, label_smoothing=label_smoothing)

    def new_meter(self, rust_index: int, calibration: dict | None = None) -> ClassificationMeter:
        return ClassificationMeter(rust_index, calibration)

    def calibrate(self, outputs, targets, rust_targets) -> dict:
        """Temperature scaling fitted by NLL on (validation) logits; stored in the checkpoint."""
        from rustlab.calibration import expected_calibration_error, fit_temperature, nll, top_label

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

    def interpret(self, outputs, meta: dict) -> list[dict]:
        """Per image: predicted class, its (calibrated) confidence, and the probability of rust."""
        from rustlab.calibration import temperature_of

        temperature = temperature_of(meta.get("calibration"))
        logits = outputs.detach().float().cpu()
        probs = (logits / temperature).softmax(dim=1)
        # the label from the logits: the temperature never changes it
        return classification_results(probs, logits.argmax(dim=1).tolist(), meta)
