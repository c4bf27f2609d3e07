"""Decode any image file a camera or disk may hold into RGB, or fail with one clear line.

Training (the decode-once cache) and prediction go through the same two functions,
``open_rgb`` and ``resize_square``, so a model sees the same pixels in both.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rustlab.errors import ImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Larger images are refused from their header, before any pixel is allocated: a decompression
# bomb declares a huge size in a small file. A 100 MP photo is still accepted.
MAX_PIXELS = 120_000_000

# A file either decodes or becomes one ImageError line; PIL's warnings about it (its own 89 MP
# bomb warning level, below MAX_PIXELS; a short TIFF tag) would only be noise on the terminal.
# Filtered once, narrowly, at import: warnings.catch_warnings is not thread-safe, and the decode
# cache decodes in threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def is_image_name(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@contextlib.contextmanager
def _opened(source, name: str):
    """A lazily decoded PIL image of ``source``; a file is closed on exit. Header checks only."""
    if isinstance(source, Image.Image):
        yield source
        return
    if isinstance(source, dict):  # a `datasets` Image(decode=False) cell
        if source.get("bytes"):
            source = source["bytes"]
        elif source.get("path"):
            source = source["path"]
        else:
            raise ImageError(name, "empty image cell")
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(name, "empty file (0 bytes)")
        yield Image.open(io.BytesIO(source))
        return
    if not isinstance(source, (str, os.PathLike)):  # open(3) would read file descriptor 3
        raise ImageError(name, f"not an image path, bytes or PIL image ({type(source).__name__})")
    # Opening is the permission check: os.access would be racy and ignores what root may read.
    try:
        fh = open(source, "rb")
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except IsADirectoryError:
        raise ImageError(name, "is a folder, not an image") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    except OSError as exc:
        raise ImageError(name, f"cannot read file ({exc.strerror or type(exc).__name__})") from None
    with fh:
        if os.fstat(fh.fileno()).st_size == 0 and Path(source).is_file():
            raise ImageError(name, "empty file (0 bytes)")
        yield Image.open(fh)


def open_rgb(source, draft_size: int | None = None, name: str | None = None) -> Image.Image:
    """Decode ``source`` (path, bytes, datasets cell or PIL image) to an upright RGB image.

    Anything else, whatever the bytes, is an ImageError naming the file: this is the boundary
    where untrusted files meet the decoders (tests/test_bad_inputs.py fuzzes it).
    ``draft_size`` lets JPEG decode at a reduced scale (DCT scaling) that still covers the
    target size: 2-4x faster decoding of large photos. EXIF orientation is applied. An animated
    image gives its first frame (where PIL opens it).
    """
    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<image>")
    if isinstance(source, dict) and source.get("path") and name == "<image>":
        name = source["path"]
    try:
        with _opened(source, name) as img:
            # checked on the header, before any pixel is allocated
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(name, f"image too large ({img.width}x{img.height} pixels; the limit is "
                                       f"{MAX_PIXELS // 1_000_000} megapixels)")
            if img.width < 1 or img.height < 1:
                raise ImageError(name, f"image has no pixels ({img.width}x{img.height})")
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any decoder failure is this file's problem
        raise ImageError(name, _reason(exc)) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable image"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "image too large (decompression bomb guard)"
    if isinstance(exc, MemoryError):
        return "image too large to decode (out of memory)"
    text = str(exc).split("\n")[0]
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "truncated or corrupt image data"
    return f"cannot decode image ({type(exc).__name__}: {text})" if text else \
        f"cannot decode image ({type(exc).__name__})"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited on white."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA") if img.mode != "La" else img.convert("LA").convert("RGBA")
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
        with _opened(source, name) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(name, f"mask too large ({img.width}x{img.height} pixels)")
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
    except Exception as exc:  # noqa: BLE001 - masks come from the same untrusted disks as images
        raise ImageError(name, _reason(exc)) from None
