"""Image-level classification: is there rust in this photo, and how sure are we."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rustlab.metrics import binary_metrics


class ClassificationMeter:
    def __init__(self, rust_index: int, calibration: dict | None = None):
        self.rust_index = rust_index
        self.calibration = calibration or {}
        self.probs: list[torch.Tensor] = []
        self.rust: list[torch.Tensor] = []
        self.loss_sum = 0.0
        self.count = 0

    def update(self, outputs, targets, rust_targets, loss=None):
        probs = outputs.detach().float().softmax(dim=1).cpu()
        self.probs.append(probs)
        self.rust.append(rust_targets.detach().bool().cpu())
        if loss is not None:
            self.loss_sum += float(loss) * len(probs)
            self.count += len(probs)

    def compute(self) -> dict:
        if not self.probs:
            return {"n": 0}
        probs = torch.cat(self.probs)
        rust = torch.cat(self.rust)
        pred_rust = probs.argmax(dim=1) == self.rust_index
        result = binary_metrics(pred_rust, rust, probs[:, self.rust_index])
        if self.count:
            result["loss"] = self.loss_sum / self.count
        return result


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

    def interpret(self, outputs, meta: dict) -> list[dict]:
        """Per image: predicted class, its confidence, and the probability of rust."""
        temperature = float((meta.get("calibration") or {}).get("temperature") or 1.0)
        probs = (outputs.detach().float() / temperature).softmax(dim=1).cpu()
        names = meta["class_names"]
        rust_index = meta["rust_index"]
        results = []
        for row in probs:
            k = int(row.argmax())
            results.append(
                {
                    "label": names[k],
                    "is_rust": k == rust_index,
                    "confidence": float(row[k]),
                    "rust_probability": float(row[rust_index]),
                    "probabilities": {n: float(p) for n, p in zip(names, row)},
                }
            )
        return results
