"""A linear head fitted in closed form: L2-regularised multinomial logistic regression (L-BFGS).

Used by ``EffNetLiteClassifier.fit`` when ``head_fit = "logistic"``: the frozen backbone's pooled
features of the unaugmented training split are standardised, the regression is fitted on them
(in float64, on the CPU: a few thousand rows of a few hundred features take about a second),
and the standardisation is folded back into the returned weights, so the model stays a plain
``Linear`` on the raw features (what ONNX export, Grad-CAM and the predictor see)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_logistic(features: torch.Tensor, labels: torch.Tensor, num_classes: int, l2: float,
                 sample_weight: torch.Tensor | None = None, max_iter: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (num_classes x D) and bias (num_classes) minimising the weighted mean cross-entropy
    plus ``l2 / 2 * |W|^2`` on standardised features. ``labels``: class indices (-1 = unknown,
    left out); ``sample_weight``: per-row weights (e.g. 1 / size of the row's source), or None."""
    x = features.detach().to("cpu", torch.float64)
    y = labels.detach().to("cpu", torch.long)
    w = torch.ones(len(y), dtype=torch.float64) if sample_weight is None else \
        sample_weight.detach().to("cpu", torch.float64)
    known = y >= 0
    x, y, w = x[known], y[known], w[known]
    if len(y) == 0 or len(torch.unique(y)) < 2:
        raise ValueError("fitting a classifier head needs training images of at least two classes")
    if int(y.max()) >= num_classes:
        raise ValueError(f"a label ({int(y.max())}) is out of range for {num_classes} classes")
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)  # a constant feature gets weight 0, not NaN
    z = (x - mean) / std
    w = w / w.sum()
    weight = torch.zeros(num_classes, z.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, tolerance_grad=1e-9,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = (F.cross_entropy(z @ weight.T + bias, y, reduction="none") * w).sum() \
            + 0.5 * float(l2) * (weight * weight).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    weight, bias = weight.detach(), bias.detach()
    # logits = ((x - mean) / std) @ W.T + b = x @ (W / std).T + (b - (W / std) @ mean)
    raw_weight = weight / std
    return raw_weight.float(), (bias - raw_weight @ mean).float()
