"""Site adaptation (`rustlab train --init`): keep every fitted part and refit only how the final
call maps to rust, on a few labelled photos of the user's site.

On a collector the model never saw, its ranking of photos carries over (ROC-AUC 0.98 on the
maintainers' hidden web photos) and its threshold does not (issue 31). So the rust-minus-other
logit ``s`` becomes ``a * s + b``, fitted by logistic regression on the site's photos with a
Gaussian prior at (log a, b) = (0, 0): the shipped call. The prior's strength, how much the
shipped model weighs against the site's photos, is chosen among ``STRENGTHS`` by 5-fold
cross-validation on those same photos (the only labels a user has). Measured leave one collector
out: experiments/adapt/results.md."""

from __future__ import annotations

import torch
import torch.nn.functional as F

STRENGTHS = (0.1, 1.0, 10.0)  # prior precision on (log a, b), against the summed log loss
FOLDS = 5


def _fit(s: torch.Tensor, y: torch.Tensor, w: torch.Tensor, strength: float) -> torch.Tensor:
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)  # log a, b
    optimizer = torch.optim.LBFGS([params], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        z = params[0].exp() * s + params[1]
        loss = (F.binary_cross_entropy_with_logits(z, y, reduction="none") * w).sum() \
            + strength / 2 * (params * params).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return params.detach()


def _cv_loss(s, y, w, strength: float, generator: torch.Generator) -> float:
    order = torch.randperm(len(s), generator=generator)
    total = 0.0
    for k in range(min(FOLDS, len(s))):
        held = order[k::FOLDS]
        keep = torch.ones(len(s), dtype=torch.bool)
        keep[held] = False
        p = _fit(s[keep], y[keep], w[keep], strength)
        z = p[0].exp() * s[held] + p[1]
        total += float((F.binary_cross_entropy_with_logits(z, y[held], reduction="none") * w[held]).sum())
    return total


def fit_platt(s: torch.Tensor, is_rust: torch.Tensor, sample_weight: torch.Tensor | None = None,
              seed: int = 0) -> tuple[float, float, dict]:
    """(a, b, info) for ``a * s + b``. ``s``: rust-minus-other logits of the labelled photos;
    ``is_rust``: their labels (bool)."""
    s = s.detach().to("cpu", torch.float64)
    y = is_rust.detach().to("cpu", torch.float64)
    w = torch.ones(len(s), dtype=torch.float64) if sample_weight is None else \
        sample_weight.detach().to("cpu", torch.float64) / sample_weight.double().mean()
    if len(s) < 2 or y.min() == y.max():
        raise ValueError("adapting to a site needs labelled photos of both kinds, rust and not rust")
    losses = {k: _cv_loss(s, y, w, k, torch.Generator().manual_seed(seed)) for k in STRENGTHS}
    strength = min(losses, key=losses.get)
    params = _fit(s, y, w, strength)
    a, b = float(params[0].exp()), float(params[1])
    return a, b, {"adapted_on": int(len(s)), "scale": round(a, 4), "shift": round(b, 4), "prior_strength": strength}


def write_into(layer: torch.nn.Linear, rust_index: int, a: float, b: float) -> None:
    """Make ``layer``'s rust-minus-other logit ``a * s + b`` (the other class's row unchanged):
    the adaptation lives in the weights, so every predictor (ONNX too) uses it."""
    if layer.out_features != 2:
        raise ValueError("site adaptation is for two-class (rust / not rust) models")
    other = 1 - rust_index
    with torch.no_grad():
        layer.weight[rust_index] = layer.weight[other] + a * (layer.weight[rust_index] - layer.weight[other])
        layer.bias[rust_index] = layer.bias[other] + a * (layer.bias[rust_index] - layer.bias[other]) + b
