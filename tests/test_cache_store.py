"""The decode-once cache file (rustlab.data.cache_store): chunked writes read back exactly, a set
read from the file per item, partial files never read, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest
import torch
from PIL import Image

from rustlab.data import cache
from rustlab.data.cache import decode_examples, load_decoded
from rustlab.data.cache_store import CacheFormatError, DiskArray, open_cache
from rustlab.data.sources import load_source


@pytest.fixture(scope="module")
def builtin():
    return load_source("builtin:24")


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(1)
    for cls in ("rust", "no_rust"):
        (tmp_path / cls).mkdir()
        for i in range(7):
            Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "rust" / "broken.jpg").write_bytes(b"not a jpeg")
    return load_source(tmp_path)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTLAB_CACHE", str(tmp_path / "cache"))


def _same(a, b):
    assert a.keys == b.keys and a.skipped == b.skipped
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.images[:], b.images[:])
    assert (a.masks is None) == (b.masks is None)
    if a.masks is not None:
        assert torch.equal(a.masks[:], b.masks[:])


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_chunked_writes_read_back_as_decoded_in_memory(builtin, folder, monkeypatch, chunk):
    monkeypatch.setattr(cache, "WRITE_CHUNK", chunk)
    for source, masks in ((builtin, True), (folder, False)):
        reference = decode_examples(source.examples, 16, with_masks=masks)
        on_disk = load_decoded(source.examples, 16, with_masks=masks, in_memory=False)
        assert on_disk.on_disk and isinstance(on_disk.images, DiskArray) and not on_disk.from_cache
        _same(on_disk, reference)
        again = load_decoded(source.examples, 16, with_masks=masks)  # small: loaded into memory
        assert again.from_cache and not again.on_disk
        _same(again, reference)
    assert [k.rsplit("/", 1)[-1] for k, _ in reference.skipped] == ["broken.jpg"]


def test_disk_array_indexes_like_a_tensor(builtin):
    decoded = load_decoded(builtin.examples, 16, with_masks=True, in_memory=False)
    images, tensor = decoded.images, decoded.images.load()
    assert images.shape == tuple(tensor.shape) and len(images) == 24 and images.numel() == tensor.numel()
    assert images.dtype == torch.uint8
    for index in (0, 23, -1, torch.tensor(5), slice(3, 9), slice(None, None, 4), [4, 1, 1], torch.tensor([2, 7])):
        assert torch.equal(images[index], tensor[index]), index
    assert torch.equal(images.to("cpu"), tensor)
    with pytest.raises(IndexError):
        images[24]
    # the trainer's and the evaluator's readers: the Dataset and a DataLoader with a worker process
    from rustlab.data.transforms import DecodedDataset, build_augmentation

    dataset = DecodedDataset(decoded, target="mask", transform=build_augmentation("light", 16))
    image, mask, label = dataset[3]
    assert image.shape == (3, 16, 16) and mask.shape == (1, 16, 16) and label == decoded.labels[3]
    loader = torch.utils.data.DataLoader(DecodedDataset(decoded), batch_size=10, num_workers=1)
    assert torch.equal(torch.cat([b[0] for b in loader]), tensor)


def test_a_partial_or_foreign_file_is_never_read(builtin, tmp_path, monkeypatch):
    first = load_decoded(builtin.examples, 16, in_memory=False)
    path = first.images.path
    data = open(path, "rb").read()
    # cut off (a copy that died half-way, a full disk): refused, then rebuilt
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(CacheFormatError):
        open_cache(path)
    rebuilt = load_decoded(builtin.examples, 16)
    assert not rebuilt.from_cache
    _same(rebuilt, first)
    assert open(path, "rb").read() == data
    # a decode that fails half-way leaves no file under the cache's name, and no temp file
    calls = []
    real = cache._decode_one

    def dying(ex, size, masks):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(ex, size, masks)

    monkeypatch.setattr(cache, "_decode_one", dying)
    monkeypatch.setattr(cache, "WRITE_CHUNK", 4)
    with pytest.raises(KeyboardInterrupt):
        load_decoded(builtin.examples, 20)
    folder = os.path.dirname(path)
    assert sorted(n.rsplit(".", 1)[-1] for n in os.listdir(folder) if not n.endswith(".lock")) == ["rlcache"]
    # a SIGKILLed writer's temp file: never read, and removed by the next writer of that set
    monkeypatch.setattr(cache, "_decode_one", real)
    stale = f"{path}.tmp-999999-deadbeef"
    with open(stale, "wb") as fh:
        fh.write(data[:100])
    os.remove(path)
    again = load_decoded(builtin.examples, 16)
    assert not again.from_cache and not os.path.exists(stale)
    _same(again, first)


def _load_in_child(spec, queue):
    from rustlab.data.sources import load_source as load

    decoded = load_decoded(load(spec).examples, 20, with_masks=True, in_memory=False)
    queue.put((decoded.from_cache, decoded.keys, decoded.images.load().numpy().tobytes()))


def test_two_processes_at_once_decode_once_and_read_the_same(builtin, tmp_path):
    """torchrun ranks on one node, or two runs: one decodes (under the lock), the other waits and
    reads its file; neither sees a partial file."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_load_in_child, args=("builtin:24", queue)) for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert sorted(r[0] for r in results) == [False, True]  # decoded once
    assert results[0][1:] == results[1][1:]
    reference = decode_examples(builtin.examples, 20, with_masks=True)
    assert results[0][2] == reference.images.numpy().tobytes()


def test_two_writers_of_one_key_leave_one_whole_file(builtin, tmp_path):
    """Without the lock (a file system without flock): both write a temp file and rename it;
    the last rename wins and the file is whole."""
    from rustlab.data.cache_store import CacheWriter

    path = tmp_path / "x.rlcache"
    reference = decode_examples(builtin.examples, 12, with_masks=True)
    writers = [CacheWriter(path, len(reference) + 2, 12, True) for _ in range(2)]
    for i in range(len(reference)):  # interleaved, row by row
        for w in writers:
            w.add(reference.keys[i], int(reference.labels[i]), reference.images[i].permute(1, 2, 0).numpy(),
                  reference.masks[i, 0].numpy())
    for w in writers:
        w.skip("a/b.jpg", "not a readable image")
        w.finish()
        stored = open_cache(path)
        assert torch.equal(stored["images"].load(), reference.images)
        assert torch.equal(stored["masks"].load(), reference.masks)
        assert stored["skipped"] == [("a/b.jpg", "not a readable image")]
    assert os.listdir(tmp_path) == ["x.rlcache"]
    # also a valid safetensors file: its own reader agrees
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    assert torch.equal(tensors["images"], reference.images) and torch.equal(tensors["labels"], reference.labels)
