"""Data sources (builtin, folders, parquet, hub), class names, splits, decode-once cache."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import shared
from PIL import Image

from rustlab.data.cache import load_decoded
from rustlab.data.records import Example, Source, rust_class_index
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits
from rustlab.errors import DataError


@pytest.mark.parametrize("names, expected", [
    (["no_rust", "rust"], 1), (["rust", "no_rust"], 0), (["Corrosion", "NoCorrosion"], 0),
    (["clean", "rusty"], 1), (["not corroded", "corroded"], 1), (["rust-free", "rust"], 1),
])
def test_rust_class_is_decided_by_name(names, expected):
    assert rust_class_index(names) == expected


@pytest.mark.parametrize("names", [["cat", "dog"], ["rust", "corrosion"]])
def test_ambiguous_class_names_are_an_error(names):
    with pytest.raises(DataError, match="which class means rust"):
        rust_class_index(names)


def test_builtin_has_labels_masks_and_is_deterministic():
    a = load_source("builtin:24")
    b = load_source("builtin:24")
    assert a.class_names == ["no_rust", "rust"] and a.has_masks
    assert len(a.examples) == 24
    assert a.fingerprint() == b.fingerprint()
    decoded = load_decoded(a.examples, 32, with_masks=True, use_cache=False)
    rust = decoded.labels == a.rust_index
    assert rust.sum() == 12
    assert (decoded.masks[rust].flatten(1).sum(1) > 0).all()
    assert (decoded.masks[~rust].sum() == 0)


def _write_folder(root, n=6, extra=None):
    rng = np.random.default_rng(0)
    for cls in ("rust", "no_rust"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / cls / f"{cls}{i}.png")
    for rel, data in (extra or {}).items():
        (root / rel).write_bytes(data)


def test_image_folder_ignores_test_in_file_names_and_skips_broken_files(tmp_path):
    # datasets' imagefolder would turn a file named *test* into a one-image test split
    _write_folder(tmp_path, extra={"rust/test_photo.png": (tmp_path / "x").write_bytes(b"") or b"",
                                   "no_rust/broken.jpg": b"not a jpeg at all"})
    (tmp_path / "x").unlink()
    source = load_source(tmp_path)
    assert len(source.examples) == 14
    assert {e.split for e in source.examples} == {None}
    decoded = load_decoded(source.examples, 16, use_cache=False)
    assert len(decoded) == 12
    assert sorted(k.rsplit("/", 1)[-1] for k, _ in decoded.skipped) == ["broken.jpg", "test_photo.png"]
    assert all("broken" not in k for k in decoded.keys)


def test_image_folder_with_split_subfolders(tmp_path):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "test", n=2)
    source = load_source(tmp_path)
    splits = assign_splits(source, seed=0)
    assert len(splits["test"]) == 4
    assert len(splits["train"]) + len(splits["validation"]) == 12 and splits["validation"]


def test_parquet_with_hub_schema(tmp_path):
    import datasets

    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(20)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["Corrosion", "NoCorrosion"])})
    path = tmp_path / "set.parquet"
    datasets.Dataset.from_dict({"image": images, "label": [i % 2 for i in range(20)]}, features=features).to_parquet(str(path))
    source = load_source(path)
    assert source.class_names == ["Corrosion", "NoCorrosion"] and source.rust_index == 0
    splits = assign_splits(source, seed=3)
    assert sum(len(v) for v in splits.values()) == 20
    assert all(splits[s] for s in ("train", "validation", "test"))
    assert len(load_decoded(splits["train"], 16, use_cache=False)) == len(splits["train"])


def test_hub_offline_fails_fast_with_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DataError) as exc:
        load_source("BinKhoaLe1812/Corrosion_Rust")
    assert time.perf_counter() - start < 15
    assert "builtin" in str(exc.value) and "folder" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_hub_unreachable_without_offline_flag_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(DataError, match="cannot reach|cannot load"):
        load_source("someone/some_dataset_that_is_not_cached")
    assert time.perf_counter() - start < 15


@pytest.mark.parametrize("spec", ["./missing-folder", "/no/such/data.parquet", "builtin:3"])
def test_bad_data_specs(spec):
    with pytest.raises(DataError):
        load_source(spec)


def test_stratified_split_is_seeded_and_groups_never_straddle():
    examples = [Example(key=f"k{i}", image=None, label=i % 2, group=f"g{i // 3}") for i in range(120)]
    source = Source("x", ["no_rust", "rust"], 1, examples)
    a, b, c = (assign_splits(source, seed=s) for s in (0, 0, 1))
    assert [e.key for e in a["test"]] == [e.key for e in b["test"]]
    assert [e.key for e in a["test"]] != [e.key for e in c["test"]]
    groups = {s: {e.group for e in a[s]} for s in a}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["validation"])
    assert sum(len(v) for v in a.values()) == 120
    for s in ("validation", "test"):
        labels = [e.label for e in a[s]]
        assert abs(labels.count(0) - labels.count(1)) <= 3


def test_decoded_cache_is_reused(tmp_path):
    source = load_source("builtin:24")
    first = load_decoded(source.examples, 24)
    second = load_decoded(source.examples, 24)
    assert not first.from_cache and second.from_cache
    assert (first.images == second.images).all() and second.keys == first.keys


def test_corrosion_cls_uses_the_publishers_split():
    source = load_source(shared("corrosion-cls"))
    splits = assign_splits(source, seed=0)
    assert {s: len(v) for s, v in splits.items()} == {"train": 932, "validation": 301, "test": 141}
    assert source.class_names[source.rust_index] == "rust"


def test_corrosion_seg_groups_and_negatives():
    source = load_source(shared("corrosion-seg"), negatives=str(shared("corrosion-cls") / "no_rust"),
                         needs_masks=True)
    assert source.has_masks
    rust = [e for e in source.examples if e.mask is not None]
    assert len(rust) == 650 and len(source.examples) == 650 + 717
    assert all(e.group for e in source.examples)


def test_a_publisher_test_split_too_small_for_a_class_is_carved_again(tmp_path):
    """metal-cls kept 2 rust photos in its test folder: such a split cannot measure rust."""
    from PIL import Image

    from rustlab.data.splits import assign_splits

    for split, per_class in (("train", {"rust": 40, "no_rust": 40}), ("test", {"rust": 2, "no_rust": 20})):
        for label, n in per_class.items():
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / f"{i}.png")
    splits = assign_splits(load_source(tmp_path), seed=0)
    test_rust = sum(1 for e in splits["test"] if e.label == load_source(tmp_path).rust_index)
    assert test_rust >= 5 and sum(map(len, splits.values())) == 102  # re-carved, stratified; nothing lost


def test_a_segmentation_source_may_bring_its_own_negatives(tmp_path):
    """images/ + masks/ + negatives/: photos without rust join with empty masks and no_rust labels."""
    for folder in ("images", "masks", "negatives"):
        (tmp_path / folder).mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (200, 80, 20)).save(tmp_path / "images" / f"p{i}.png")
        Image.new("L", (16, 16), 255).save(tmp_path / "masks" / f"p{i}.png")
        Image.new("RGB", (16, 16), (90, 90, 90)).save(tmp_path / "negatives" / f"n{i}.png")
    source = load_source(tmp_path, needs_masks=True)
    negatives = [e for e in source.examples if "negatives" in e.key]
    assert len(negatives) == 3 and all(e.mask is None and e.label == 1 - source.rust_index for e in negatives)
    assert any("negatives" in note for note in source.notes)
