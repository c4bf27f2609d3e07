"""The decode-once cache file: written in chunks while decoding, read back one image at a time.

A set of 100k photos at 224 px is 15 GB of pixels, more than a training machine may have, so
the cache never has to be in memory as a whole. The file is a valid safetensors file (so
``safetensors.safe_open`` and ``load_file`` read it too, and loading it never unpickles)
laid out so that it can be written before the number of readable images is known:

    8-byte header length | JSON header, padded with spaces to HEADER_BYTES | data
    data: images (M x 3 x S x S uint8), unused slots for the N - M unreadable files,
          masks (M x 1 x S x S) and their unused slots, alignment, labels (M int64),
          index (JSON bytes: keys and skipped files)

The header is written last, into the space reserved for it. ``DiskArray`` reads rows with
``os.pread``: no memory map, because mapped pages count in the process's resident memory (and
stay there until the kernel needs them back), while pread leaves caching to the page cache,
which every process reading the file (torchrun ranks, DataLoader workers, a second run) shares.

Writers write a temporary file and rename it into place (atomic on POSIX): a reader sees the
old file, no file or the whole new one, never a partial one; two writers of the same key write
the same bytes, and the second rename wins.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

HEADER_BYTES = 4096  # data starts page-aligned; the header of 6 tensors needs < 2 KiB
FORMAT = "rustlab-decoded-v2"


class CacheFormatError(ValueError):
    """A file that is not a complete cache file of this format (damaged, foreign, older)."""


class DiskArray:
    """Rows of a uint8 tensor stored in a file, read on demand: indexing like a tensor's first
    dimension (an int, a slice, a list or tensor of indices), ``shape``, ``dtype``, ``len``,
    ``numel``; ``load()`` (or ``.to(device)``) reads it all into a tensor."""

    def __init__(self, path, offset: int, shape: tuple):
        self.path, self.offset, self.shape = str(path), int(offset), tuple(int(s) for s in shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64))
        self._fd = None
        self._pid = None

    @property
    def dtype(self):
        import torch

        return torch.uint8

    def __len__(self) -> int:
        return self.shape[0]

    def numel(self) -> int:
        return self.shape[0] * self.row_bytes

    def _read(self, first: int, count: int):
        import torch

        if self._fd is None or self._pid != os.getpid():  # a forked DataLoader worker may reuse it; spawn reopens
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        buf = bytearray(count * self.row_bytes)
        if buf:
            got = os.preadv(self._fd, [buf], self.offset + first * self.row_bytes)
            if got != len(buf):
                raise OSError(f"{self.path}: cache file shorter than its header says")
        return torch.frombuffer(buf, dtype=torch.uint8).view(count, *self.shape[1:]) if buf else \
            torch.zeros((0, *self.shape[1:]), dtype=torch.uint8)

    def __getitem__(self, index):
        import torch

        n = self.shape[0]
        if isinstance(index, slice):
            first, stop, step = index.indices(n)
            if step == 1:
                return self._read(first, max(0, stop - first))
            index = list(range(first, stop, step))
        if isinstance(index, torch.Tensor) and index.ndim == 0:
            index = int(index)
        if isinstance(index, (int, np.integer)):
            i = int(index) + (n if index < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {index} is out of bounds for size {n}")
            return self._read(i, 1)[0]
        rows = [self[int(i)] for i in index]
        return torch.stack(rows) if rows else torch.zeros((0, *self.shape[1:]), dtype=torch.uint8)

    def load(self):
        return self._read(0, self.shape[0])

    def to(self, *args, **kwargs):
        return self.load().to(*args, **kwargs)

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"DiskArray({self.path!r}, shape={self.shape})"


class CacheWriter:
    """Writes up to ``slots`` decoded images (and masks) in input order, as they come."""

    def __init__(self, path, slots: int, size: int, with_masks: bool):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.slots, self.size, self.with_masks = int(slots), int(size), bool(with_masks)
        self.image_bytes, self.mask_bytes = 3 * size * size, size * size
        self.keys: list[str] = []
        self.labels: list[int] = []
        self.skipped: list[tuple[str, str]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def add(self, key: str, label: int, image_hwc: np.ndarray, mask_hw: np.ndarray | None) -> None:
        m = len(self.keys)
        if m >= self.slots:
            raise ValueError("more images than slots")
        chw = np.ascontiguousarray(image_hwc.transpose(2, 0, 1), dtype=np.uint8)
        os.pwrite(self._fd, chw.data, HEADER_BYTES + m * self.image_bytes)
        if self.with_masks:
            mask = np.ascontiguousarray(mask_hw, dtype=np.uint8)
            os.pwrite(self._fd, mask.data, HEADER_BYTES + self.slots * self.image_bytes + m * self.mask_bytes)
        self.keys.append(key)
        self.labels.append(int(label))

    def skip(self, key: str, reason: str) -> None:
        self.skipped.append((key, reason))

    def finish(self) -> Path:
        """Labels, index and header written; the file renamed into place. Returns the path."""
        m, s = len(self.keys), self.size
        tensors, offset = [], 0

        def put(name, dtype, shape, nbytes):
            nonlocal offset
            if nbytes or name[0] != "_":  # unused space is a "_pad" tensor: safetensors wants no gaps
                tensors.append((name, {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}))
            offset += nbytes

        put("images", "U8", (m, 3, s, s), m * self.image_bytes)
        put("_pad_images", "U8", ((self.slots - m) * self.image_bytes,), (self.slots - m) * self.image_bytes)
        if self.with_masks:
            put("masks", "U8", (m, 1, s, s), m * self.mask_bytes)
            put("_pad_masks", "U8", ((self.slots - m) * self.mask_bytes,), (self.slots - m) * self.mask_bytes)
        align = -offset % 8
        put("_pad_align", "U8", (align,), align)
        labels = np.asarray(self.labels, dtype="<i8")
        os.pwrite(self._fd, labels.tobytes(), HEADER_BYTES + offset)
        put("labels", "I64", (m,), labels.nbytes)
        index = json.dumps({"keys": self.keys, "skipped": self.skipped}).encode()
        os.pwrite(self._fd, index, HEADER_BYTES + offset)
        put("index", "U8", (len(index),), len(index))
        header = json.dumps({"__metadata__": {"format": FORMAT}, **dict(tensors)}).encode()
        if len(header) > HEADER_BYTES - 8:
            raise ValueError("cache header too long")
        header = header.ljust(HEADER_BYTES - 8, b" ")
        os.ftruncate(self._fd, HEADER_BYTES + offset)  # a file always as long as its header says
        os.pwrite(self._fd, len(header).to_bytes(8, "little") + header, 0)
        os.fsync(self._fd)  # the data is on disk before the name points at it
        os.close(self._fd)
        self._fd = None
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def open_cache(path) -> dict:
    """{"images": DiskArray, "masks": DiskArray | None, "labels": int64 tensor, "keys", "skipped"}.

    Raises CacheFormatError for anything but a complete file of this format."""
    import torch

    path = str(path)
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
        size = os.fstat(fh.fileno()).st_size
        if len(head) < 8:
            raise CacheFormatError("too short")
        n = int.from_bytes(head[:8], "little")
        if n != HEADER_BYTES - 8 or len(head) != HEADER_BYTES:
            raise CacheFormatError("not a rustlab cache file (header)")
        try:
            header = json.loads(head[8:])
        except ValueError:
            raise CacheFormatError("damaged header") from None
        if (header.get("__metadata__") or {}).get("format") != FORMAT:
            raise CacheFormatError("another format")
        end = max(t["data_offsets"][1] for k, t in header.items() if k != "__metadata__")
        if size != HEADER_BYTES + end:
            raise CacheFormatError("file length does not match its header")
        labels_info, index_info = header["labels"], header["index"]
        fh.seek(HEADER_BYTES + labels_info["data_offsets"][0])
        labels = np.frombuffer(fh.read(8 * labels_info["shape"][0]), dtype="<i8").astype(np.int64)
        fh.seek(HEADER_BYTES + index_info["data_offsets"][0])
        index = json.loads(fh.read(index_info["shape"][0]))
    images = DiskArray(path, HEADER_BYTES + header["images"]["data_offsets"][0], header["images"]["shape"])
    masks = None
    if "masks" in header:
        masks = DiskArray(path, HEADER_BYTES + header["masks"]["data_offsets"][0], header["masks"]["shape"])
    if not (len(images) == len(labels) == len(index["keys"]) and (masks is None or len(masks) == len(labels))):
        raise CacheFormatError("counts disagree")
    return {"images": images, "masks": masks, "labels": torch.from_numpy(labels), "keys": index["keys"],
            "skipped": [tuple(s) for s in index["skipped"]]}
