"""Pictures for the window, made with PIL only (no Tk): thumbnails, heatmap and mask overlays.

The worker thread calls these, so the UI thread only turns finished PIL images into Tk photos.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# Grad-CAM heat over a photo: drawn as the predict report draws it (rustlab.inference.overlay)
from rustlab.inference.overlay import heat_overlay  # noqa: F401 - the window's name for it

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


def mask_overlay(image: Image.Image, mask: np.ndarray, threshold: float = 0.5) -> Image.Image:
    """Segmentation mask (rust probability per pixel) drawn as `rustlab predict --out` draws it."""
    from rustlab.inference.overlay import overlay

    return overlay(image, mask, threshold=threshold)
