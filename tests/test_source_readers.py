"""Data source readers: a plugin adds a ``--data`` kind with one function, and load_source uses it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import rustlab
from rustlab.data.cache import load_decoded
from rustlab.data.records import Example, Source
from rustlab.data.sources import load_source, source_readers
from rustlab.data.splits import assign_splits
from rustlab.errors import DataError
from rustlab.registry import register_plugin, reset_registry


def _png(array) -> dict:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}  # a `datasets`-style cell: no file on disk


def read_toy(spec: str) -> Source:
    """``toy:N``: N small synthetic images, every third one rusty, with masks."""
    from rustlab.data.synthetic import render_sample

    try:
        n = int(spec.split(":", 1)[1])
    except ValueError:
        raise DataError(f"--data {spec}: expected toy:N") from None
    rng = np.random.default_rng(0)
    examples = []
    for i in range(n):
        img, mask = render_sample(rng, 24, has_rust=i % 3 == 0)
        examples.append(Example(key=f"toy/{i}", image=_png(img), label=int(i % 3 == 0),
                                mask=_png(mask.astype(np.uint8) * 255) if mask.any() else None, group=f"g{i // 2}"))
    return Source(spec, ["no_rust", "rust"], 1, examples, has_masks=True, kind="toy")


class _ToySources:
    """A plugin registered at run time, as a notebook or test would: one reader, one function."""

    @rustlab.hookimpl
    def rustlab_register_sources(self, register):
        register("toy", claims=lambda spec: spec.startswith("toy:"), read=read_toy, description="synthetic toy set")
        register("buggy", claims=lambda spec: spec.startswith("buggy:"), read=lambda spec: 1 / 0)
        register("wrong-type", claims=lambda spec: spec.startswith("wrong:"), read=lambda spec: [])
        # a plugin cannot take over a built-in reader's name
        register("parquet", claims=lambda spec: True, read=read_toy)


@pytest.fixture
def toy_plugin():
    with pytest.warns(UserWarning, match="source reader 'parquet'.*ignored"):
        register_plugin(_ToySources())
    yield
    reset_registry()


def test_builtin_readers_are_registered_in_order():
    names = [r.name for r in source_readers()]
    assert names[:5] == ["builtin", "parquet", "segmentation-folder", "image-folder", "hub"]


def test_plugin_reader_feeds_load_source_splits_and_cache(toy_plugin):
    names = [r.name for r in source_readers()]
    assert names[0] == "toy" and names[-1] == "hub"  # plugins are asked before the catch-alls
    source = load_source("toy:30", needs_masks=True)
    assert source.kind == "toy" and len(source.examples) == 30 and source.has_masks
    assert source.fingerprint() == load_source("toy:30").fingerprint()
    splits = assign_splits(source, seed=0)
    assert sum(len(v) for v in splits.values()) == 30
    decoded = load_decoded(splits["train"], 16, with_masks=True, use_cache=False)
    assert len(decoded) == len(splits["train"]) and not decoded.skipped
    rust = decoded.labels == 1
    assert (decoded.masks[~rust].sum() == 0) and (decoded.masks[rust].flatten(1).sum(1) > 0).all()


def test_plugin_reader_errors_are_one_line(toy_plugin, tmp_path):
    with pytest.raises(DataError, match="expected toy:N"):
        load_source("toy:many")
    with pytest.raises(DataError, match=r"source reader 'buggy' \(from _ToySources\) failed: ZeroDivisionError") as exc:
        load_source("buggy:1")
    assert "\n" not in str(exc.value)
    with pytest.raises(DataError, match="returned list, not a rustlab.data.records.Source"):
        load_source("wrong:1")
    # the checks every source gets, whoever read it
    with pytest.raises(DataError, match="no images found"):
        load_source("toy:0")
    with pytest.raises(DataError, match="--negatives .*: no such folder"):
        load_source("toy:6", negatives=str(tmp_path / "missing"))


def test_unclaimed_specs_keep_their_messages(tmp_path):
    with pytest.raises(DataError, match="toy:3: no such file or folder"):
        load_source("toy:3")  # no plugin registered: nobody claims it
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="expected a folder or a .parquet file"):
        load_source(tmp_path / "notes.txt")
