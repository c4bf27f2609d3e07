"""Decode-once store: every image decoded and resized once into uint8 pixels, cached on disk.

Keyed by the identity of every file (path, size, mtime or content hash), the image size and
the preprocessing version, so a second run (or a second model on the same data) starts
without decoding a single JPEG. The file (rustlab.data.cache_store) is written in chunks while
decoding and read per item when the set is larger than memory should hold; loading it never
unpickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rustlab.data.identity import example_identity
from rustlab.data.locations import cache_dir

PREPROCESS_VERSION = "square-bilinear-draft-v1"


@dataclass
class DecodedSet:
    # uint8 N x 3 x S x S: a tensor, or a cache_store.DiskArray (same indexing) for a set
    # larger than memory_budget(); masks likewise
    images: "torch.Tensor"
    labels: "torch.Tensor"  # int64 N (-1 where unknown)
    masks: "torch.Tensor | None"  # uint8 N x 1 x S x S of 0/1, or None
    keys: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    from_cache: bool = False
    seconds: float = 0.0
    # bool N: a rust photo without a drawn mask, served with a WEAK_RUST mask (segmentation
    # trained on image labels too; set by the trainer's data step), or None
    weak: "torch.Tensor | None" = None

    def __len__(self):
        return len(self.keys)

    @property
    def on_disk(self) -> bool:
        """Images read from the cache file per item rather than held in memory."""
        import torch

        return not isinstance(self.images, torch.Tensor)

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


def memory_budget() -> int:
    """Bytes of decoded pixels kept in memory; a bigger set is read from its cache file per item.
    ``RUSTLAB_CACHE_MEMORY_MIB`` sets it (default 2048 MiB: every torchrun rank holds its own
    copy of an in-memory set, while a file-backed one shares the page cache)."""
    try:
        return int(float(os.environ.get("RUSTLAB_CACHE_MEMORY_MIB", "2048")) * 2**20)
    except ValueError:
        return 2048 * 2**20


def load_decoded(examples, size: int, with_masks: bool = False, use_cache: bool = True,
                 progress: bool = False, in_memory: bool | None = None) -> DecodedSet:
    """``decode_examples`` through the on-disk cache (rustlab.data.cache_store).

    Decoding writes the cache file in chunks, so memory never holds the whole set. The set is
    then loaded into memory (tensors, the fastest to index) when it fits ``memory_budget()``, or
    read from the file one item at a time (``in_memory``: force either). Without the cache,
    everything is decoded into memory as before."""
    if not use_cache:
        return decode_examples(examples, size, with_masks, progress=progress)
    from rustlab.data.cache_store import CacheFormatError, open_cache

    start = time.perf_counter()
    path = cache_dir() / "decoded" / f"{_key(examples, size, with_masks)}.rlcache"
    from_cache = True
    with _decode_lock(path) as locked:
        try:
            stored = open_cache(path)
        except (CacheFormatError, OSError, KeyError, TypeError, ValueError):
            # none yet, or damaged: (re)built, never trusted. Under the lock, so torchrun ranks and
            # two runs at once decode a set once; the rest wait and read the file.
            stored, from_cache = None, False
        if stored is None:
            if locked:  # temp files of this set left by a killed writer: no live writer holds the lock
                for stale in path.parent.glob(f"{path.name}.tmp-*"):
                    stale.unlink(missing_ok=True)
            try:
                _decode_to_file(examples, size, with_masks, path, progress)
                stored = open_cache(path)
            except OSError:  # a read-only or full cache folder costs speed, not correctness
                return decode_examples(examples, size, with_masks, progress=progress)
    images, masks = stored["images"], stored["masks"]
    nbytes = images.numel() + (masks.numel() if masks is not None else 0)
    if in_memory or (in_memory is None and nbytes <= memory_budget()):
        images, masks = images.load(), (masks.load() if masks is not None else None)
    return DecodedSet(images, stored["labels"], masks, stored["keys"], stored["skipped"], from_cache=from_cache,
                      seconds=time.perf_counter() - start)


# Images decoded (and held) at once while a cache file is written: memory stays bounded.
WRITE_CHUNK = 256


def _decode_to_file(examples, size: int, with_masks: bool, path, progress: bool) -> None:
    from rustlab.data.cache_store import CacheWriter

    writer = CacheWriter(path, len(examples), size, with_masks)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(examples), desc=f"decode {size}px", unit="img", leave=False)
    try:
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            for first in range(0, len(examples), WRITE_CHUNK):
                chunk = examples[first:first + WRITE_CHUNK]
                for ex, (img, mask, error) in zip(chunk, pool.map(lambda e: _decode_one(e, size, with_masks),
                                                                  chunk)):
                    if error is not None:
                        writer.skip(ex.key, error)
                    else:
                        writer.add(ex.key, -1 if ex.label is None else int(ex.label), img, mask)
                if bar is not None:
                    bar.update(len(chunk))
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()


@contextlib.contextmanager
def _decode_lock(path):
    """An exclusive lock beside the cache file while it is checked and built (fcntl.flock);
    yields whether it is held. Where locks are unavailable, none: two processes then both decode
    and the second rename wins, which is still correct."""
    try:
        import fcntl
    except ImportError:
        yield False
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(f"{path}.lock", "a")
    except OSError:
        yield False
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process decoding the same images ({path.name})", file=sys.stderr,
                  flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        yield True
