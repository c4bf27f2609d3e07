"""Sources that are folders on disk: class subfolders, ``images/`` + ``masks/``, and extra negatives."""

from __future__ import annotations

import csv
from pathlib import Path

from rustlab.data.records import SPLIT_ALIASES, Example, Source
from rustlab.data.tables import datasets_module, from_datasets
from rustlab.errors import DataError


def is_segmentation_folder(path: Path) -> bool:
    return path.is_dir() and (path / "images").is_dir() and (path / "masks").is_dir()


def read_image_folder(path: Path, spec: str) -> Source:
    """Class subfolders (rust/, no_rust/) through datasets' imagefolder.

    ``data_files`` is given explicitly: left to infer splits, imagefolder turns any file with
    "test" in its name into a one-image test split (seen on corrosion-cls).
    """
    ds = datasets_module()
    split_dirs = _split_dirs(path)
    data_files = {s: f"{d.name}/**" for s, d in split_dirs.items()} or {"train": "**"}
    try:
        dsdict = ds.load_dataset("imagefolder", data_dir=str(path), data_files=data_files)
    except Exception as exc:
        raise DataError(f"--data {spec}: cannot read image folder: {str(exc).splitlines()[0]}") from None
    if split_dirs:
        source = from_datasets(dsdict, spec, kind="folder")
    else:
        if "label" not in dsdict["train"].column_names:
            raise DataError(f"--data {spec}: expected class subfolders such as rust/ and no_rust/")
        source = from_datasets(dsdict, spec, kind="folder")
        for ex in source.examples:
            ex.split = None
    _apply_manifest(source, path)
    return source


def _split_dirs(path: Path) -> dict[str, Path]:
    found = {}
    for child in sorted(path.iterdir()):
        if child.is_dir() and child.name.lower() in SPLIT_ALIASES:
            found[SPLIT_ALIASES[child.name.lower()]] = child
    return found


def _apply_manifest(source: Source, root: Path) -> None:
    """Use the publisher's split (``manifest.csv``: file, author_split) where one is given."""
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        return
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "file" not in rows[0] or "author_split" not in rows[0]:
        return
    splits = {str((root / r["file"]).resolve()): SPLIT_ALIASES.get(r["author_split"].lower()) for r in rows}
    assigned = 0
    for ex in source.examples:
        s = splits.get(str(Path(ex.key).resolve()))
        if s:
            ex.split = s
            assigned += 1
    source.notes.append(f"splits from {manifest.name} (author_split) for {assigned}/{len(source.examples)} images")


def read_segmentation_folder(path: Path, spec: str) -> Source:
    """``images/`` and ``masks/`` with matching stems (mask 0 = background, >0 = rust), and
    optionally ``negatives/``: photos without rust, trained with empty masks."""
    from rustlab.data.images import is_image_name  # numpy and PIL: only once a folder is read

    masks = {p.stem: p for p in (path / "masks").iterdir() if is_image_name(p)}
    groups = {}
    manifest = path / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("stem") and row.get("source_group"):
                    groups[row["stem"]] = row["source_group"]
    examples, unmatched = [], 0
    for img in sorted((path / "images").iterdir()):
        if not is_image_name(img):
            continue
        if img.stem not in masks:
            unmatched += 1
            continue
        examples.append(Example(key=str(img), image=str(img), label=1, mask=str(masks[img.stem]),
                                group=groups.get(img.stem, img.stem)))
    source = Source(spec, ["no_rust", "rust"], 1, examples, has_masks=True, kind="segmentation-folder")
    if unmatched:
        source.notes.append(f"{unmatched} images without a mask of the same stem were left out")
    if (path / "negatives").is_dir():  # the collector's own photos without rust: empty masks
        add_negatives(source, str(path / "negatives"))
    return source


def add_negatives(source: Source, negatives: str) -> None:
    """Images known to hold no rust, added with empty masks (e.g. corrosion-cls/no_rust)."""
    from rustlab.data.images import is_image_name

    root = Path(negatives).expanduser()
    if not root.is_dir():
        raise DataError(f"--negatives {negatives}: no such folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_name(p))
    if not files:
        raise DataError(f"--negatives {negatives}: no images found")
    no_rust = 1 - source.rust_index if len(source.class_names) == 2 else None
    for p in files:
        source.examples.append(Example(key=str(p), image=str(p), label=no_rust, mask=None,
                                       group=f"negative:{p.stem}"))
    source.notes.append(f"{len(files)} negatives (empty masks) from {negatives}")
