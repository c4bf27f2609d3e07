"""Draw a predicted rust mask: a binary mask image and the photo with rust tinted and outlined.

Used by `rustlab predict --out` and `--report`, and the GUI; Grad-CAM heat too (``heat_overlay``). Only numpy and PIL: no torch needed to draw.
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


def _heat_colors(values: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB uint8 on a dark-blue-to-yellow ramp that stays readable over steel greys."""
    stops = np.array([[0.0, 0, 0, 90], [0.35, 120, 0, 160], [0.65, 230, 60, 40], [1.0, 255, 235, 60]])
    v = np.clip(values, 0, 1)
    return np.stack([np.interp(v, stops[:, 0], stops[:, c]) for c in (1, 2, 3)], axis=-1).astype(np.uint8)


def _upsample(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A small float map (model input size) stretched to ``size`` = (width, height), as the model
    squeezed the photo to a square."""
    img = Image.fromarray(np.asarray(values, dtype=np.float32), mode="F").resize(size, Image.BILINEAR)
    return np.asarray(img)


def heat_overlay(image: Image.Image, heat: np.ndarray, strength: float = 1.0) -> Image.Image:
    """Grad-CAM heat over the photo. Opacity grows with the heat and with ``strength`` (the rust
    probability), so a photo the model calls clean shows almost no colour even though every
    Grad-CAM map is scaled to a maximum of 1."""
    h = _upsample(heat, image.size)
    # the weakest 15 % of the map stays clear: a faint tint everywhere would hide the photo
    alpha = (np.clip((h - 0.15) / 0.85, 0, 1) * 0.7 * float(np.clip(strength, 0, 1)))[..., None]
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    out = base * (1 - alpha) + _heat_colors(h).astype(np.float32) * alpha
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))
