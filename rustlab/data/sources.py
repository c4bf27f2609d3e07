"""Where images come from: the Hugging Face hub, a local folder, a parquet file, or `builtin`.

Every source is read through `datasets` with the image column left undecoded
(``Image(decode=False)``), so rustlab decodes each file itself, once, with the safe decoder of
``rustlab.data.images``: a broken file is skipped and reported instead of killing a run.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rustlab.errors import DataError

DEFAULT_HUB_DATASET = "BinKhoaLe1812/Corrosion_Rust"
SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                  "val": "validation", "dev": "validation", "test": "test", "testing": "test"}
ALTERNATIVES = "a local folder (rust/ and no_rust/ subfolders), a .parquet file, or 'builtin'"


@dataclass
class Example:
    """One image of a source. ``image``/``mask`` are what the decoder accepts (path or datasets cell)."""

    key: str
    image: object
    label: int | None = None
    mask: object | None = None  # None with has_masks: an image known to hold no rust (empty mask)
    group: str | None = None  # scenes that must not straddle splits
    split: str | None = None  # the split the source itself assigns, if any


@dataclass
class Source:
    spec: str
    class_names: list[str]
    rust_index: int
    examples: list[Example]
    has_masks: bool = False
    kind: str = "folder"
    notes: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Identity of the data: every example's key, label and file identity."""
        h = hashlib.sha1()
        for ex in self.examples:
            h.update(f"{ex.key}|{ex.label}|{_file_identity(ex.image)}|{_file_identity(ex.mask)}\n".encode())
        return h.hexdigest()[:16]


def _file_identity(obj) -> str:
    if obj is None:
        return "-"
    if isinstance(obj, dict):
        if obj.get("bytes"):
            return hashlib.sha1(obj["bytes"]).hexdigest()[:12]
        obj = obj.get("path")
    try:
        st = os.stat(obj)
        return f"{st.st_size}:{int(st.st_mtime)}"
    except (OSError, TypeError):
        return str(obj)


def rust_class_index(class_names: list[str]) -> int:
    """Which class means rust, decided by name (never by position)."""

    def norm(name):
        return re.sub(r"[^a-z]", "", str(name).lower())

    negative = re.compile(r"^(no|non|not|without|clean|free|healthy|intact|good|normal)")
    hits = [i for i, n in enumerate(class_names)
            if re.search(r"rust|corro", norm(n)) and not negative.match(norm(n))
            and not re.search(r"(free|less)$", norm(n))]
    if len(hits) != 1:
        raise DataError(f"cannot tell which class means rust from class names {class_names}; "
                        "name it 'rust' (and the other e.g. 'no_rust')")
    return hits[0]


def load_source(spec: str | os.PathLike, *, negatives: str | None = None, task: str = "classification") -> Source:
    """Resolve a ``--data`` value to a Source."""
    spec = str(spec)
    if spec == "builtin" or spec.startswith("builtin:"):
        from rustlab.data.builtin import builtin_parquet

        source = _from_datasets(_load_parquet(builtin_parquet(spec)), spec, kind="builtin")
    else:
        path = Path(spec).expanduser()
        if path.is_file() and path.suffix == ".parquet":
            source = _from_datasets(_load_parquet(path), spec, kind="parquet")
        elif path.is_dir():
            if (path / "images").is_dir() and (path / "masks").is_dir():
                source = _segmentation_folder(path, spec)
            else:
                source = _image_folder(path, spec)
        elif path.exists():
            raise DataError(f"--data {spec}: expected a folder or a .parquet file")
        elif _looks_like_path(spec):
            raise DataError(f"--data {spec}: no such file or folder")
        else:
            source = _from_datasets(_load_hub(spec), spec, kind="hub")
    if negatives:
        _add_negatives(source, negatives)
    if task == "segmentation" and not source.has_masks:
        raise DataError(f"--data {spec}: segmentation needs masks (images/ + masks/ folders, "
                        "a 'mask' column, or 'builtin')")
    if not source.examples:
        raise DataError(f"--data {spec}: no images found")
    return source


def _looks_like_path(spec: str) -> bool:
    """Anything but ``owner/name`` is meant as a local path."""
    return not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", spec) or Path(spec).suffix.lower() in (
        ".parquet", ".csv", ".jpg", ".jpeg", ".png")


def _datasets():
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def _load_parquet(path):
    ds = _datasets()
    try:
        return ds.load_dataset("parquet", data_files={"train": str(path)})
    except Exception as exc:
        raise DataError(f"cannot read parquet {path}: {str(exc).splitlines()[0]}") from None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A bounded connectivity probe: offline, `datasets` would retry for ~20 s before failing."""
    result = []

    def probe():
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)  # DNS lookups ignore the socket timeout; don't wait for them
    return bool(result)


def _load_hub(repo_id: str):
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or not _hub_reachable()
    ds = _datasets()
    if offline:
        # Only a dataset already in the local cache can load now; fail fast otherwise.
        import huggingface_hub.constants as hub_constants

        ds.config.HF_HUB_OFFLINE = True
        hub_constants.HF_HUB_OFFLINE = True
    try:
        return ds.load_dataset(repo_id)
    except Exception as exc:
        if offline:
            raise DataError(f"cannot reach the Hugging Face hub to load {repo_id!r} and it is not cached; "
                            f"use {ALTERNATIVES}") from None
        raise DataError(f"cannot load hub dataset {repo_id!r}: {str(exc).splitlines()[0]}; "
                        f"alternatives: {ALTERNATIVES}") from None


def _from_datasets(dsdict, spec: str, kind: str) -> Source:
    """A DatasetDict with an ``image`` column and a ``label`` (ClassLabel) and/or ``mask`` column."""
    ds = _datasets()
    first = next(iter(dsdict.values()))
    columns = set(first.column_names)
    if "image" not in columns or not ({"label", "mask"} & columns):
        raise DataError(f"--data {spec}: expected columns 'image' and 'label' (or 'mask'), found {sorted(columns)}")
    has_masks = "mask" in columns
    class_names = ["no_rust", "rust"]
    if "label" in columns:
        feature = first.features["label"]
        if not hasattr(feature, "names"):
            raise DataError(f"--data {spec}: column 'label' must be a ClassLabel with class names")
        class_names = list(feature.names)
    rust_index = rust_class_index(class_names)
    examples = []
    for split_name, split in dsdict.items():
        split_std = _SPLIT_ALIASES.get(split_name.lower())
        split = split.cast_column("image", ds.Image(decode=False))
        if has_masks:
            split = split.cast_column("mask", ds.Image(decode=False))
        has_group = "source_group" in split.column_names
        for i, row in enumerate(split):
            key = (row["image"] or {}).get("path") or f"{spec}[{split_name}][{i}]"
            mask = row.get("mask") if has_masks else None
            label = row["label"] if "label" in columns else _label_from_mask(mask, rust_index)
            examples.append(Example(key=key, image=row["image"], label=label, mask=mask,
                                    group=str(row["source_group"]) if has_group else None, split=split_std))
    return Source(spec, class_names, rust_index, examples, has_masks=has_masks, kind=kind)


def _label_from_mask(mask, rust_index) -> int:
    # Rows of a mask-only set are all corroded unless their mask is missing.
    return rust_index if mask else 1 - rust_index


def _split_dirs(path: Path) -> dict[str, Path]:
    found = {}
    for child in sorted(path.iterdir()):
        if child.is_dir() and child.name.lower() in _SPLIT_ALIASES:
            found[_SPLIT_ALIASES[child.name.lower()]] = child
    return found


def _image_folder(path: Path, spec: str) -> Source:
    """Class subfolders (rust/, no_rust/) through datasets' imagefolder.

    ``data_files`` is given explicitly: left to infer splits, imagefolder turns any file with
    "test" in its name into a one-image test split (seen on corrosion-cls).
    """
    ds = _datasets()
    split_dirs = _split_dirs(path)
    data_files = {s: f"{d.name}/**" for s, d in split_dirs.items()} or {"train": "**"}
    try:
        dsdict = ds.load_dataset("imagefolder", data_dir=str(path), data_files=data_files)
    except Exception as exc:
        raise DataError(f"--data {spec}: cannot read image folder: {str(exc).splitlines()[0]}") from None
    if split_dirs:
        source = _from_datasets(dsdict, spec, kind="folder")
    else:
        if "label" not in dsdict["train"].column_names:
            raise DataError(f"--data {spec}: expected class subfolders such as rust/ and no_rust/")
        source = _from_datasets(dsdict, spec, kind="folder")
        for ex in source.examples:
            ex.split = None
    _apply_manifest(source, path)
    return source


def _apply_manifest(source: Source, root: Path) -> None:
    """Use the publisher's split (``manifest.csv``: file, author_split) where one is given."""
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        return
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "file" not in rows[0] or "author_split" not in rows[0]:
        return
    splits = {str((root / r["file"]).resolve()): _SPLIT_ALIASES.get(r["author_split"].lower()) for r in rows}
    assigned = 0
    for ex in source.examples:
        s = splits.get(str(Path(ex.key).resolve()))
        if s:
            ex.split = s
            assigned += 1
    source.notes.append(f"splits from {manifest.name} (author_split) for {assigned}/{len(source.examples)} images")


def _segmentation_folder(path: Path, spec: str) -> Source:
    """``images/`` and ``masks/`` with matching stems (mask 0 = background, >0 = rust)."""
    from rustlab.data.images import is_image_name

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
    return source


def _add_negatives(source: Source, negatives: str) -> None:
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
