"""Padding a dense model's input to a size its strides divide (for plugins' U-Nets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of N x C x H x W ``x`` to the next multiple of ``multiple``; the
    caller crops its output back to H x W.

    Reflect rather than zero: a band of zeros is a strong artificial edge (a dark border, not
    unlike a corroded rim) that the model would see and could learn; mirrored content keeps the
    image statistics at the border. Reflect needs pad < size, so images smaller than the pad
    (e.g. 1x1) fall back to replicate, which has no such limit."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
