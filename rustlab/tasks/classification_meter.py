"""The classification meter (torch): accuracy, precision, recall, F1, ROC-AUC and calibration error
over a split's logits."""

from __future__ import annotations

import torch

from rustlab.tasks.metrics import binary_metrics


class ClassificationMeter:
    def __init__(self, rust_index: int, calibration: dict | None = None):
        from rustlab.tasks.calibration import temperature_of

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
        from rustlab.tasks.calibration import ECE_BINS, ece_from_bins, reliability_bins, top_label

        known = targets >= 0  # unlabelled images count for nothing here
        logits, targets = logits[known], targets[known]
        raw = reliability_bins(*top_label(logits, targets))
        if not self.calibration:
            return {"ece": ece_from_bins(raw), "reliability": {"bins": ECE_BINS, "uncalibrated": raw}}
        calibrated = reliability_bins(*top_label(logits, targets, self.temperature))
        return {"ece": ece_from_bins(calibrated), "ece_uncalibrated": ece_from_bins(raw),
                "temperature": self.temperature,
                "reliability": {"bins": ECE_BINS, "uncalibrated": raw, "calibrated": calibrated}}
