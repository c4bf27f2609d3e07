"""The colour rule as an nn.Module with no trainable weights.

A pixel is rust-coloured when its hue lies in [hue_min, hue_max] degrees (orange to brown),
its saturation is at least ``saturation_min`` (grey steel is not rust) and its value lies in
[value_min, value_max] (black shadows and blown-out highlights carry no colour). The image's
score is the share of such pixels; the rule says rust when the share is above ``threshold``.

Everything the rule needs lives in buffers, so the checkpoint alone reproduces it. ``fit``
chooses the threshold on training images (closed form; the trainer calls it instead of
gradient steps) and a logistic slope so that the 2-class outputs are probabilities (with a
usable ROC curve and calibration), not just 0/1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# The trainer and the Predictor feed images normalised with these (rustlab.data.transforms);
# the rule undoes it to read colours. Kept here too so the model never imports the data stack.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Shares are skewed (most images hold a few percent of rust colour), so the logit is linear in
# log(share + SHARE_FLOOR): on corrosion-cls validation that cut the NLL from 0.64 to 0.54 and
# the ECE from 0.20 to 0.03 against a logit linear in the share. Decisions are the same.
SHARE_FLOOR = 0.003


@dataclass
class ColourRuleConfig:
    # Colour statistics barely change with resolution; 64 px keeps decoding and scoring cheap.
    image_size: int = 64
    num_classes: int = 2
    hue_min: float = 3.0  # degrees
    hue_max: float = 45.0
    saturation_min: float = 0.25
    value_min: float = 0.15
    value_max: float = 0.90

    def __post_init__(self):
        if int(self.num_classes) != 2:
            raise ValueError(f"the colour rule is binary (rust / no rust); got {self.num_classes} classes")
        if int(self.image_size) < 1:
            raise ValueError("image_size must be >= 1")
        if not 0.0 <= float(self.hue_min) < float(self.hue_max) <= 360.0:
            raise ValueError("need 0 <= hue_min < hue_max <= 360 (degrees)")
        if not 0.0 <= float(self.saturation_min) <= 1.0:
            raise ValueError("saturation_min must be in [0, 1]")
        if not 0.0 <= float(self.value_min) < float(self.value_max) <= 1.0:
            raise ValueError("need 0 <= value_min < value_max <= 1")


def rgb_to_hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """N x 3 x H x W RGB in [0, 1] to hue (degrees, [0, 360)), saturation and value (N x H x W)."""
    r, g, b = rgb.unbind(1)
    value, _ = rgb.max(1)
    low, _ = rgb.min(1)
    delta = value - low
    saturation = torch.where(value > 0, delta / value.clamp_min(1e-12), torch.zeros_like(value))
    safe = delta.clamp_min(1e-12)
    hue = torch.where(value == r, ((g - b) / safe) % 6.0,
                      torch.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    hue = torch.where(delta > 0, hue * 60.0, torch.zeros_like(hue))  # grey has no hue
    return hue, saturation, value


class ColourRule(nn.Module):
    """2-class logits +-z/2 with z = slope * (log(share + floor) - log(threshold + floor)): P(rust) = sigmoid(z),
    and the rule says rust exactly when share > threshold."""

    def __init__(self, cfg: ColourRuleConfig):
        super().__init__()
        self.config = cfg
        buf = lambda v: torch.tensor(float(v), dtype=torch.float32)  # noqa: E731
        self.register_buffer("hue_range", torch.tensor([cfg.hue_min, cfg.hue_max], dtype=torch.float32))
        self.register_buffer("saturation_min", buf(cfg.saturation_min))
        self.register_buffer("value_range", torch.tensor([cfg.value_min, cfg.value_max], dtype=torch.float32))
        # Unfitted: any rust-coloured pixel at all means rust, with a gentle slope.
        self.register_buffer("threshold", buf(0.0))
        self.register_buffer("slope", buf(10.0))
        self.register_buffer("rust_index", torch.tensor(1, dtype=torch.int64))
        self.register_buffer("mean", torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1))

    def rust_pixels(self, rgb: torch.Tensor) -> torch.Tensor:
        """Which pixels are rust-coloured (N x H x W bool), from RGB in [0, 1] (N x 3 x H x W)."""
        hue, saturation, value = rgb_to_hsv(rgb.float().clamp(0.0, 1.0))
        return ((hue >= self.hue_range[0]) & (hue <= self.hue_range[1]) & (saturation >= self.saturation_min)
                & (value >= self.value_range[0]) & (value <= self.value_range[1]))

    def rust_share(self, rgb: torch.Tensor) -> torch.Tensor:
        """Share of rust-coloured pixels per image, from RGB in [0, 1] (N x 3 x H x W)."""
        return self.rust_pixels(rgb).float().flatten(1).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Colour thresholds need full precision: no autocast here, whatever the caller set.
        with torch.autocast(device_type=x.device.type, enabled=False):
            share = self.rust_share(x.float() * self.std + self.mean)
            z = self.slope * (_log_share(share) - _log_share(self.threshold))
            # softmax: P(rust) = sigmoid(z); the sign puts +z/2 on the rust class without Python
            # control flow on a buffer, so the graph exports to ONNX
            z = z * (2.0 * self.rust_index.float() - 1.0)
            return torch.stack([-z / 2, z / 2], dim=1)

    @torch.no_grad()
    def fit(self, images: torch.Tensor, labels: torch.Tensor, rust_index: int = 1) -> dict:
        """Choose the threshold with the best accuracy on ``images`` (uint8 N x 3 x H x W, as decoded)
        and ``labels`` (class indices; -1 = unknown, ignored), then a logistic slope by likelihood."""
        from rustlab.errors import RustlabError

        known = labels >= 0
        if int(rust_index) not in (0, 1):
            raise RustlabError(f"colour-rule: rust_index must be 0 or 1, got {rust_index}")
        shares = torch.cat([self.rust_share(images[i:i + 256].float() / 255.0)
                            for i in range(0, len(images), 256)])[known.to(images.device)].double().cpu()
        rust = (labels[known] == int(rust_index)).cpu()
        if len(rust) == 0 or bool(rust.all()) or not bool(rust.any()):
            raise RustlabError("colour-rule: fitting needs training images of both classes")
        threshold = best_threshold(shares, rust)
        slope = fit_slope(_log_share(shares), rust, float(_log_share(torch.tensor(threshold))))
        self.threshold.fill_(threshold)
        self.slope.fill_(slope)
        self.rust_index.fill_(int(rust_index))
        accuracy = float(((shares > threshold) == rust).double().mean())
        return {"threshold": threshold, "slope": slope, "train_accuracy": accuracy}


def _log_share(share: torch.Tensor) -> torch.Tensor:
    return torch.log(share + SHARE_FLOOR)


def best_threshold(shares: torch.Tensor, rust: torch.Tensor) -> float:
    """The cut with the highest accuracy for ``share > cut`` means rust.

    Candidates are midpoints between consecutive distinct shares (and both ends); among equally
    accurate cuts the middle one is taken, away from any training image. O(N log N): one sort and
    two running counts, so a large training set costs no N x N table."""
    order = shares.double().argsort()
    s, r = shares.double()[order], rust.bool()[order].long()
    zero = torch.zeros(1, dtype=torch.long)
    # a cut before position k calls images k.. rust: correct = no-rust before k + rust from k on
    no_rust_before = torch.cat([zero, torch.cumsum(1 - r, 0)])
    rust_from = int(r.sum()) - torch.cat([zero, torch.cumsum(r, 0)])
    correct = no_rust_before + rust_from
    between = torch.ones(len(s) + 1, dtype=torch.bool)
    between[1:-1] = s[1:] > s[:-1]  # a cut only where the share changes: equal shares get one call
    cuts = torch.cat([s[:1] - 1e-6, (s[1:] + s[:-1]) / 2, s[-1:] + 1e-6])
    best = torch.nonzero(between & (correct == correct[between].max())).flatten()
    return float(cuts[best[len(best) // 2]])


def fit_slope(scores: torch.Tensor, rust: torch.Tensor, threshold: float) -> float:
    """Maximum-likelihood slope of P(rust) = sigmoid(slope * (score - threshold)), slope > 0."""
    d = scores.double() - threshold
    y = rust.double()

    def nll(log_slope: float) -> float:
        z = math.exp(log_slope) * d
        return float(torch.nn.functional.binary_cross_entropy_with_logits(z, y))

    lo, hi = math.log(1e-2), math.log(1e4)  # golden-section search on log(slope): nll is unimodal there
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


def build_colour_rule(cfg: ColourRuleConfig) -> ColourRule:
    return ColourRule(cfg)
