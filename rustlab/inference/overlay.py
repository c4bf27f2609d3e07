"""Draw a predicted rust mask: a binary mask image and the photo with rust tinted and outlined.

Used by `rustlab predict --out` and the GUI. Only numpy and PIL: no torch needed to draw.
The model's mask has the model's input size (a square); it is stretched back over the photo
with the same square resize the photo went through, bilinearly, before thresholding, so the
outline follows the probability contour instead of the model's pixel grid.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

TINT = (255, 0, 160)  # magenta: stands out on rust-brown, grey steel and green paint alike
OUTLINE = (255, 255, 0)


def mask_at(mask, size: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """Boolean HxW (``size`` is PIL's (width, height)) of pixels whose resized probability >= threshold."""
    prob = np.asarray(mask, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"mask must be H x W, got shape {prob.shape}")
    if (prob.shape[1], prob.shape[0]) != tuple(size):
        prob = np.asarray(Image.fromarray(prob, mode="F").resize(tuple(size), Image.BILINEAR))
    return prob >= threshold


def mask_image(mask, size: tuple[int, int], threshold: float = 0.5) -> Image.Image:
    """The rust mask as an 8-bit PNG-ready image: 255 = rust, 0 = background (the data's convention)."""
    return Image.fromarray(mask_at(mask, size, threshold).astype(np.uint8) * 255, mode="L")


def overlay(image: Image.Image, mask, threshold: float = 0.5, alpha: float = 0.45,
            tint: tuple = TINT, outline: tuple | None = OUTLINE) -> Image.Image:
    """``image`` (PIL) with the pixels where ``mask`` (HxW probabilities, any size) >= threshold tinted."""
    rgb = image.convert("RGB")
    rust = mask_at(mask, rgb.size, threshold)
    out = np.asarray(rgb, dtype=np.float32).copy()
    out[rust] = (1 - alpha) * out[rust] + alpha * np.asarray(tint, dtype=np.float32)
    if outline is not None and rust.any():
        # the outline: rust pixels with a background pixel among their neighbours, about
        # 1/400 of the image's longest side thick so it stays visible on large photos
        width = max(3, (max(rgb.size) // 400) | 1)
        eroded = Image.fromarray(rust.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(width))
        edge = rust & (np.asarray(eroded) == 0)
        out[edge] = outline
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
