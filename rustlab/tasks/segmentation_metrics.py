"""Segmentation's torch side: the loss (BCE + soft Dice), per-pixel statistics, the meter and the
image-level threshold fitted on validation. See rustlab.tasks.segmentation for the definitions,
and for the optional second output channel (an image-call logit)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rustlab.tasks.metrics import binary_metrics, roc_auc
from rustlab.tasks.segmentation_defaults import (AREA_FLOOR, DEFAULT_AREA_THRESHOLD, DEFAULT_SLOPE, PIXEL_THRESHOLD,
                                                 WEAK_RUST, WEAK_TOP_SHARE)

DICE_SMOOTH = 1.0


def soft_dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    """1 - soft Dice of the rust class over the whole batch (float32).

    Summed over the batch rather than per image: the negatives' empty masks would otherwise
    give a Dice of 0 or 1 per image with huge gradients for a single stray pixel.
    """
    probs = torch.sigmoid(logits.float())
    t = targets.float()
    inter = (probs * t).sum()
    return 1.0 - (2.0 * inter + smooth) / (probs.sum() + t.sum() + smooth)


def mask_logits(outputs: torch.Tensor) -> torch.Tensor:
    """The per-pixel rust logits: channel 0 (N x 1 x H x W) of a segmenter's outputs."""
    return outputs[:, :1]


def call_logits(outputs: torch.Tensor) -> torch.Tensor | None:
    """Per image, the image-call head's rust logit (channel 1, constant over the pixels), or None
    where the model has no head (one channel: the call is made from the rust area)."""
    return outputs[:, 1].flatten(1).mean(1) if outputs.shape[1] > 1 else None


def weak_images(targets: torch.Tensor) -> torch.Tensor:
    """Per image: True where the mask only says "rust somewhere" (``WEAK_RUST``, no drawn mask)."""
    return targets.flatten(1).amax(1) >= WEAK_RUST


def top_share_logit(logits: torch.Tensor, share: float = WEAK_TOP_SHARE) -> torch.Tensor:
    """Per image: the mean of its highest ``share`` of pixel logits (a soft "is any of it rust")."""
    flat = logits.flatten(1)
    k = max(1, round(share * flat.shape[1]))
    return flat.topk(k, dim=1).values.mean(1)


def segmentation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice over the drawn masks, in float32 even under autocast (fp16 sums over a
    batch of masks overflow past 65504 and BCE's log saturates).

    A rust photo without a drawn mask (``WEAK_RUST``) adds, instead, a multiple-instance term:
    BCE pushing the mean of its top ``WEAK_TOP_SHARE`` pixel logits towards rust, weighted by
    the share of such photos in the batch. The drawn masks' term keeps its full weight: photos
    without masks add to what the masks teach, never dilute it. An image-call channel is not
    trained here: its head is fitted in closed form after training."""
    logits = mask_logits(logits).float()
    weak = weak_images(targets)
    if not bool(weak.any()):
        t = targets.float()
        return F.binary_cross_entropy_with_logits(logits, t) + soft_dice_loss(logits, t)
    strong = ~weak
    pooled = top_share_logit(logits[weak])
    loss = weak.float().mean() * F.binary_cross_entropy_with_logits(pooled, torch.ones_like(pooled))
    if bool(strong.any()):
        drawn, t = logits[strong], targets[strong].float()
        loss = loss + F.binary_cross_entropy_with_logits(drawn, t) + soft_dice_loss(drawn, t)
    return loss


def area_score(area: torch.Tensor) -> torch.Tensor:
    """The rust area on a log scale (decades), the axis the threshold and slope live on."""
    return torch.log10(area.double() + AREA_FLOOR)


def rust_probability(area: torch.Tensor, calibration: dict | None) -> torch.Tensor:
    """P(rust in the image) from its rust area: a logistic in log-area, 0.5 exactly at the threshold."""
    cal = calibration or {}
    threshold = float(cal.get("area_threshold", DEFAULT_AREA_THRESHOLD))
    slope = float(cal.get("area_slope", DEFAULT_SLOPE))
    return torch.sigmoid(slope * (area_score(area) - area_score(torch.tensor(threshold))))


def pixel_stats(logits: torch.Tensor, targets: torch.Tensor | None, threshold: float = PIXEL_THRESHOLD):
    """(per-image rust area, per-image max probability, (tp, fp, fn) summed over the batch's drawn
    masks, or None where it has none)."""
    probs = torch.sigmoid(mask_logits(logits).detach().float())
    pred = probs >= threshold
    area = pred.flatten(1).float().mean(1).cpu()
    max_prob = probs.flatten(1).amax(1).cpu()
    counts = None
    if targets is not None:
        drawn = ~weak_images(targets.detach())  # a mask nobody drew has no pixels to score
        if bool(drawn.any()):
            pred, true = pred[drawn], targets.detach()[drawn] == 1
            counts = (int((pred & true).sum()), int((pred & ~true).sum()), int((~pred & true).sum()))
    return area, max_prob, counts


class SegmentationMeter:
    """Accumulates pixel TP/FP/FN over a split and the per-image rust areas.

    ``targets`` of None (or 1-D image labels) means the data has no masks (a classification
    folder scored by the segmenter's image-level call): pixel metrics are then left out.
    """

    def __init__(self, rust_index: int, calibration: dict | None = None):
        self.rust_index = rust_index
        self.calibration = calibration or {}
        self.tp = self.fp = self.fn = 0
        self.pixels_scored = False
        self.areas: list[torch.Tensor] = []
        self.max_probs: list[torch.Tensor] = []
        self.calls: list[torch.Tensor] = []  # the image-call head's logits, where the model has one
        self.rust: list[torch.Tensor] = []
        self.loss_sum = 0.0
        self.count = 0

    def update(self, outputs, targets, rust_targets, loss=None):
        if targets is not None and targets.dim() != outputs.dim():
            targets = None  # image labels, not masks
        area, max_prob, counts = pixel_stats(outputs, targets)
        if counts is not None:
            self.pixels_scored = True
            self.tp += counts[0]
            self.fp += counts[1]
            self.fn += counts[2]
        self.areas.append(area)
        self.max_probs.append(max_prob)
        call = call_logits(outputs)
        if call is not None:
            self.calls.append(call.detach().float().cpu())
        self.rust.append(rust_targets.detach().bool().cpu())
        if loss is not None:
            self.loss_sum += float(loss) * len(area)
            self.count += len(area)

    def compute(self) -> dict:
        if not self.areas:
            return {"n": 0}
        area = torch.cat(self.areas)
        rust = torch.cat(self.rust)
        threshold = float(self.calibration.get("area_threshold", DEFAULT_AREA_THRESHOLD))
        # image level, with the classifier's keys so tables and confusion matrices line up
        if len(self.calls) == len(self.areas):  # the model's image-call head decides
            p_rust = torch.sigmoid(torch.cat(self.calls).double())
            result = binary_metrics(p_rust >= 0.5, rust, p_rust)
            call = {"score": "image-call head (p >= 0.5)"}
        else:
            result = binary_metrics(area > threshold, rust, rust_probability(area, self.calibration))
            # a dict, not scalars: a constant threshold would otherwise be logged as a curve every epoch
            call = {"score": "rust area (share of pixels with p >= 0.5)", "area_threshold": threshold,
                    "threshold_from": "validation" if self.calibration.get("fitted") else "default"}
        result["roc_auc_max_prob"] = roc_auc(torch.cat(self.max_probs), rust)
        result["image_call"] = call
        result["mean_rust_area"] = float(area.mean())
        if self.pixels_scored:
            tp, fp, fn = self.tp, self.fp, self.fn
            result.update(
                iou=tp / (tp + fp + fn) if tp + fp + fn else 0.0,
                dice=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
                pixel_precision=tp / (tp + fp) if tp + fp else 0.0,
                pixel_recall=tp / (tp + fn) if tp + fn else 0.0,
                pixel_counts={"tp": tp, "fp": fp, "fn": fn},
                pixel_averaging="micro (TP/FP/FN summed over all pixels of the split)",
            )
        if self.count:
            result["loss"] = self.loss_sum / self.count
        return result


def fit_area_calibration(area: torch.Tensor, rust: torch.Tensor) -> dict:
    """Threshold on rust area maximising balanced accuracy, then the logistic slope (max likelihood).

    Balanced accuracy rather than accuracy: validation may hold many more negatives than
    rust images (or the reverse), and the threshold should not just follow the majority.
    Candidates are midpoints between neighbouring distinct log-areas; among equally good
    ones the middle one is taken (the widest margin to both classes).
    """
    rust = rust.bool()
    n_pos, n_neg = int(rust.sum()), int((~rust).sum())
    if n_pos == 0 or n_neg == 0:
        return {"area_threshold": DEFAULT_AREA_THRESHOLD, "area_slope": DEFAULT_SLOPE, "fitted": False,
                "note": "validation holds one class only; default threshold kept"}
    x = area_score(area)
    levels = torch.unique(x)
    candidates = torch.cat([levels[:1] - 0.5, (levels[1:] + levels[:-1]) / 2, levels[-1:] + 0.5])
    pred = x[None, :] > candidates[:, None]
    tpr = (pred & rust).sum(1).double() / n_pos
    tnr = (~pred & ~rust).sum(1).double() / n_neg
    balanced = (tpr + tnr) / 2
    if float(balanced.max()) <= 0.5:  # the areas do not tell the classes apart at all
        return {"area_threshold": DEFAULT_AREA_THRESHOLD, "area_slope": DEFAULT_SLOPE, "fitted": False,
                "note": "rust area does not separate the validation classes; default threshold kept"}
    best = torch.nonzero(balanced == balanced.max()).flatten()
    x_t = float(candidates[best[len(best) // 2]])
    # candidates lie half a decade beyond the extreme areas; an area is a fraction in [0, 1]
    threshold = min(max(0.0, 10**x_t - AREA_FLOOR), 1.0)
    x_t = float(area_score(torch.tensor(threshold)))

    # slope: 1-D maximum likelihood on validation with the boundary fixed at the threshold,
    # so the confidence agrees with the call (p > 0.5 exactly when area > threshold)
    d = (x - x_t).double()
    y = rust.double()
    slope = 1.0
    for _ in range(50):  # Newton on a convex 1-D log-likelihood
        p = torch.sigmoid(slope * d)
        grad = float(((p - y) * d).sum())
        hess = float((p * (1 - p) * d * d).sum()) + 1e-9
        slope = min(max(slope - grad / hess, 0.05), 50.0)  # separable data would push it to infinity
        if abs(grad) < 1e-6:
            break
    return {
        "area_threshold": threshold,
        "area_slope": slope,
        "pixel_threshold": PIXEL_THRESHOLD,
        "fitted": True,
        "val_balanced_accuracy": float(balanced.max()),
        "val_images": n_pos + n_neg,
    }
