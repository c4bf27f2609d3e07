"""Masks that disagree with the model: segmentation photos whose mask is probably wrong.

The out-of-fold rust cells of each photo (the cells a model fitted without that photo calls
rust, ``rustlab.audit.folds``) are compared with its mask on the same grid, as a soft IoU (each
cell's masked share against its rust probability). A mask is suspect where the two overlap
little while the model is sure of its cells, and wherever a mask is empty on a rust photo or
covers nearly the whole photo (a failed export, or the whole photo labelled rust). A mask
smaller than ``MIN_CELLS`` cells is not judged against the cells: at 16 px a cell, the model
cannot see it (it is listed, with that note, at the end).
"""

from __future__ import annotations

import numpy as np

MIN_CELLS = 2  # masks under this many cells' area are too small for the cells to judge
NEARLY_ALL = 0.95  # a mask over this share of the photo is flagged
LOW_IOU = 0.2  # with a confident model, an overlap under this is flagged
CONFIDENT = 0.5  # mean |2 p - 1| over the cells: how sure the model is of its cells


def rank_masks(cell_probabilities: np.ndarray, masks: np.ndarray, rust: np.ndarray) -> dict:
    """``cell_probabilities``: N x h x w out-of-fold rust probability per cell; ``masks``: N x S x S of
    0/1; ``rust``: N bool, the photo's label (an empty mask is only suspect on a rust photo).

    Returns per photo ``iou`` (soft: sum of min(masked share, p) over sum of max, over the cells),
    ``confidence``, ``mask_share``, ``score`` (low = suspicious: the IoU, or 0 for an empty or
    nearly full mask), ``flagged``, ``note`` and ``rank`` (1 = most suspicious)."""
    import torch
    import torch.nn.functional as F

    n, h, w = cell_probabilities.shape
    share = F.adaptive_avg_pool2d(torch.as_tensor(masks, dtype=torch.float32)[:, None], (h, w))[:, 0].numpy()
    inter = np.minimum(share, cell_probabilities).reshape(n, -1).sum(1)
    union = np.maximum(share, cell_probabilities).reshape(n, -1).sum(1)
    iou = inter / np.maximum(union, 1e-9)
    # an empty mask where the model sees no rust cell is full agreement, not an IoU of 0
    nothing = (share.reshape(n, -1).sum(1) == 0) & ((cell_probabilities >= 0.5).reshape(n, -1).sum(1) == 0)
    iou = np.where(nothing, 1.0, iou)
    confidence = np.abs(2 * cell_probabilities - 1).reshape(n, -1).mean(1)
    mask_share = masks.reshape(n, -1).mean(1)
    empty, full = (mask_share == 0) & np.asarray(rust, dtype=bool), mask_share >= NEARLY_ALL
    tiny = (mask_share > 0) & (mask_share < MIN_CELLS / (h * w))
    disagree = (iou < LOW_IOU) & (confidence >= CONFIDENT) & ~tiny
    flagged = empty | full | disagree
    score = np.where(empty | full, 0.0, np.where(tiny, 1.0, iou))
    notes = [("rust photo with an empty mask" if e else f"mask covers {s:.0%} of the photo" if f else
              f"mask under {MIN_CELLS} cells ({s:.1%} of the photo): too small for the cells to judge" if t else
              f"mask IoU {i:.2f} with the model's rust cells (model {c:.0%} sure)")
             for e, f, t, s, i, c in zip(empty, full, tiny, mask_share, iou, confidence)]
    # flagged first; within each part, the least overlap where the model is surest comes first
    order = np.lexsort((-(1 - score) * confidence, ~flagged))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return {"iou": iou, "confidence": confidence, "mask_share": mask_share, "score": score,
            "flagged": flagged, "note": notes, "rank": rank}
