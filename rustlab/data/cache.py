"""Decode-once store: every image decoded and resized once into a uint8 tensor, cached on disk.

Keyed by the identity of every file (path, size, mtime or content hash), the image size and
the preprocessing version, so a second run (or a second model on the same data) starts
without decoding a single JPEG. Stored as safetensors: loading a cache never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rustlab.data.identity import example_identity
from rustlab.data.locations import cache_dir

PREPROCESS_VERSION = "square-bilinear-draft-v1"


@dataclass
class DecodedSet:
    images: "torch.Tensor"  # uint8 N x 3 x S x S
    labels: "torch.Tensor"  # int64 N (-1 where unknown)
    masks: "torch.Tensor | None"  # uint8 N x 1 x S x S of 0/1, or None
    keys: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    from_cache: bool = False
    seconds: float = 0.0

    def __len__(self):
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        n = self.images.numel() + self.labels.numel() * 8
        return n + (self.masks.numel() if self.masks is not None else 0)


def _key(examples, size: int, with_masks: bool) -> str:
    h = hashlib.sha1(f"{PREPROCESS_VERSION}|{size}|{with_masks}".encode())
    for ex in examples:
        h.update(f"{example_identity(ex)}\n".encode())
    return h.hexdigest()[:20]


def _decode_one(ex, size: int, with_masks: bool):
    import numpy as np

    from rustlab.data.images import load_mask, load_square
    from rustlab.errors import ImageError

    try:
        img = load_square(ex.image, size, name=ex.key)
        mask = None
        if with_masks:
            mask = load_mask(ex.mask, size, name=f"{ex.key} (mask)") if ex.mask else np.zeros((size, size), np.uint8)
        return img, mask, None
    except ImageError as exc:
        return None, None, exc.reason


def decode_examples(examples, size: int, with_masks: bool = False, workers: int | None = None,
                    progress: bool = False) -> DecodedSet:
    """Decode every example (threads: PIL releases the GIL while decoding)."""
    import numpy as np
    import torch

    start = time.perf_counter()
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda ex: _decode_one(ex, size, with_masks), examples)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(examples), desc=f"decode {size}px", unit="img", leave=False)
        results = list(results)
    images, masks, labels, keys, skipped = [], [], [], [], []
    for ex, (img, mask, error) in zip(examples, results):
        if error is not None:
            skipped.append((ex.key, error))
            continue
        images.append(img)
        masks.append(mask)
        labels.append(-1 if ex.label is None else int(ex.label))
        keys.append(ex.key)
    if images:
        image_t = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    else:
        image_t = torch.zeros((0, 3, size, size), dtype=torch.uint8)
    mask_t = None
    if with_masks:
        mask_t = torch.from_numpy(np.stack(masks))[:, None] if masks else torch.zeros((0, 1, size, size), torch.uint8)
    return DecodedSet(image_t, torch.tensor(labels, dtype=torch.int64), mask_t, keys, skipped,
                      seconds=time.perf_counter() - start)


def load_decoded(examples, size: int, with_masks: bool = False, use_cache: bool = True,
                 progress: bool = False) -> DecodedSet:
    """``decode_examples`` through the on-disk cache."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open, save_file

    path = cache_dir() / "decoded" / f"{_key(examples, size, with_masks)}.safetensors"
    if use_cache and path.is_file():
        start = time.perf_counter()
        try:
            with safe_open(str(path), "pt") as fh:
                meta = json.loads(fh.metadata()["rustlab"])
            tensors = load_file(str(path))
            return DecodedSet(tensors["images"], tensors["labels"], tensors.get("masks"), meta["keys"],
                              [tuple(s) for s in meta["skipped"]], from_cache=True,
                              seconds=time.perf_counter() - start)
        except (SafetensorError, OSError, KeyError, ValueError):
            pass  # a damaged cache is rebuilt, never trusted
    decoded = decode_examples(examples, size, with_masks, progress=progress)
    if use_cache:
        tensors = {"images": decoded.images, "labels": decoded.labels}
        if decoded.masks is not None:
            tensors["masks"] = decoded.masks
        meta = json.dumps({"keys": decoded.keys, "skipped": decoded.skipped})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save_file(tensors, str(tmp), metadata={"rustlab": meta})
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache folder costs speed, not correctness
    return decoded
