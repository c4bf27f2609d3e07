"""Test-time flips for per-pixel models: the mask is the mean of the logits over the photo and its
mirror images, each flipped back onto the photo's pixels.

Rust has no up, down, left or right, and the training augmentation flips photos, so a segmenter
should answer the same for a flipped photo; averaging its answers over the flips cancels part of
its noise. Measured on the U-Net recipe (experiments/unet/results.md): horizontal + vertical flips
raised validation rust IoU in each of 3 seeds, at 4x the forward passes. A checkpoint records its
mode (``tta`` in its metadata, from `rustlab train --tta`); every path that loads it (evaluate,
predict, the GUI, ONNX export) wraps the model the same way, and `--tta` overrides it.
"""

from __future__ import annotations

import torch

from rustlab.config import check_mode  # noqa: F401 - the setting's check, where callers have found it

# the dims of an N x C x H x W batch each extra view flips (width is dim 3); the same names as
# rustlab.config.TTA_MODE_NAMES, which the config and the CLI check without importing torch
TTA_MODES = {"none": (), "hflip": ((3,),), "hvflip": ((3,), (2,), (2, 3))}


class FlipAverage(torch.nn.Module):
    """``model``'s logits averaged over the input and its flips (flipped back). The wrapped model
    keeps its own name in the state dict's ``model.`` prefix, like a checkpoint's."""

    def __init__(self, model: torch.nn.Module, mode: str):
        super().__init__()
        self.model, self.mode, self.flips = model, mode, TTA_MODES[mode]

    def forward(self, x):
        total = self.model(x)
        for dims in self.flips:
            total = total + self.model(x.flip(dims)).flip(dims)
        return total / (1 + len(self.flips))


def with_test_time_flips(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """``model`` itself for "none", else wrapped in FlipAverage."""
    return model if mode == "none" else FlipAverage(model, mode)
