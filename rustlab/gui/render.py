"""Pictures for the window, made with PIL only (no Tk): thumbnails, heatmap and mask overlays.

The worker thread calls these, so the UI thread only turns finished PIL images into Tk photos.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

THUMB = 56  # list thumbnails (px, longest side)
PREVIEW = 480  # the large preview as stored (px, longest side); the panel fits it to its size

# Colours shared by the list and the detail panel: red for rust, green for clean.
RUST = "#c62828"
CLEAN = "#2e7d32"


def fit(image: Image.Image, size: int) -> Image.Image:
    """A copy that fits in size x size, aspect kept."""
    out = image.copy()
    out.thumbnail((size, size), Image.BILINEAR, reducing_gap=2.0)
    return out


def pack(image: Image.Image) -> bytes:
    """A preview kept as JPEG bytes (~30 KB instead of ~400 KB of pixels), so a session of
    thousands of photos stays small; ``unpack`` decodes it in a few milliseconds when shown."""
    import io

    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def unpack(preview) -> Image.Image:
    if isinstance(preview, (bytes, bytearray)):
        import io

        return Image.open(io.BytesIO(preview)).convert("RGB")
    return preview


def scale_into(image: Image.Image, width: int, height: int, limit: float = 3.0) -> Image.Image:
    """Scale to fit width x height, aspect kept; small pictures grow at most ``limit`` times, so a
    192 px photo is not a stamp in the middle of the panel."""
    scale = min(width / image.width, height / image.height, limit)
    if abs(scale - 1.0) < 0.01:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS if scale > 1 else Image.BILINEAR, reducing_gap=None if scale > 1 else 2.0)


def placeholder(size: int) -> Image.Image:
    """Grey tile with a warning triangle, for a file that could not be read (drawn, not a font
    glyph, so it looks the same on every system)."""
    tile = Image.new("RGB", (size, size), (232, 232, 232))
    draw = ImageDraw.Draw(tile)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(170, 170, 170))
    s, c = size * 0.56, size / 2
    top, base = c - s * 0.5, c + s * 0.42
    draw.polygon([(c, top), (c - s * 0.55, base), (c + s * 0.55, base)], fill=(183, 28, 28))
    w = max(1.0, s * 0.06)
    draw.rectangle([c - w, top + s * 0.3, c + w, base - s * 0.33], fill="white")
    draw.ellipse([c - w * 1.3, base - s * 0.22, c + w * 1.3, base - s * 0.22 + 2.6 * w], fill="white")
    return tile


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


def mask_overlay(image: Image.Image, mask: np.ndarray, threshold: float = 0.5) -> Image.Image:
    """Segmentation mask (rust probability per pixel) drawn as `rustlab predict --out` draws it."""
    from rustlab.inference.overlay import overlay

    return overlay(image, mask, threshold=threshold)
