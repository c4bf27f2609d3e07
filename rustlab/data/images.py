"""Decode any image file a camera or disk may hold into RGB, or fail with one clear line.

Training (the decode-once cache) and prediction go through the same two functions,
``open_rgb`` and ``resize_square``, so a model sees the same pixels in both.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rustlab.errors import ImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# PIL refuses > 2x this many pixels as a decompression bomb; a 100 MP photo is still accepted.
MAX_PIXELS = 120_000_000


def is_image_name(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _open(source, name: str) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, dict):  # a `datasets` Image(decode=False) cell
        if source.get("bytes"):
            source = source["bytes"]
        elif source.get("path"):
            source = source["path"]
        else:
            raise ImageError(name, "empty image cell")
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError(name, "empty file (0 bytes)")
        return Image.open(io.BytesIO(source))
    path = Path(source)
    if not path.exists():
        raise ImageError(name, "no such file")
    if path.is_dir():
        raise ImageError(name, "is a folder, not an image")
    if not os.access(path, os.R_OK):
        raise ImageError(name, "permission denied")
    if path.stat().st_size == 0:
        raise ImageError(name, "empty file (0 bytes)")
    return Image.open(path)


def open_rgb(source, draft_size: int | None = None, name: str | None = None) -> Image.Image:
    """Decode ``source`` (path, bytes, datasets cell or PIL image) to an upright RGB image.

    ``draft_size`` lets JPEG decode at a reduced scale (DCT scaling) that still covers the
    target size: 2-4x faster decoding of large photos. EXIF orientation is applied.
    """
    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<image>")
    if isinstance(source, dict) and source.get("path") and name == "<image>":
        name = source["path"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(source, name)
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(name, f"image too large ({img.width}x{img.height} pixels)")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # animated GIF/WebP: the first frame
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(name, _reason(exc)) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, IndexError, TypeError) as exc:
        raise ImageError(name, _reason(exc)) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable image"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "image too large (decompression bomb guard)"
    text = str(exc).split("\n")[0]
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "truncated or corrupt image data"
    return f"cannot decode image ({text or type(exc).__name__})"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def resize_square(img: Image.Image, size: int) -> np.ndarray:
    """Resize (aspect not kept, as in the seed) to size x size; uint8 HxWx3."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
    return np.array(img, dtype=np.uint8)  # a writable copy: torch.from_numpy needs one


def load_square(source, size: int, name: str | None = None) -> np.ndarray:
    """Decode and resize: the one preprocessing path of training and prediction."""
    return resize_square(open_rgb(source, draft_size=size, name=name), size)


def load_mask(source, size: int, name: str | None = None) -> np.ndarray:
    """A mask image to a size x size uint8 array of 0/1 (any value > 0 is rust)."""
    name = name or str(source)
    try:
        img = _open(source, name)
        img.load()
        img = ImageOps.exif_transpose(img)
        if img.mode not in ("L", "1", "P", "I", "I;16"):
            img = img.convert("L")
        arr = np.asarray(img)
        if arr.ndim == 3:
            arr = arr.max(axis=2)
        binary = Image.fromarray(((arr > 0) * 255).astype(np.uint8), mode="L")
        if binary.size != (size, size):
            binary = binary.resize((size, size), Image.NEAREST)
        return (np.asarray(binary) > 127).astype(np.uint8)
    except ImageError:
        raise
    except Exception as exc:  # masks come from the same untrusted disks as images
        raise ImageError(name, _reason(exc)) from None
