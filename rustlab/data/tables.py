"""Sources read through `datasets`: parquet files, hub datasets and image folders all arrive here.

The image column is left undecoded (``Image(decode=False)``), so rustlab decodes each file
itself, once, with the safe decoder of ``rustlab.data.images``: a broken file is skipped and
reported instead of killing a run.
"""

from __future__ import annotations

from rustlab.data.records import SPLIT_ALIASES, Example, Source, rust_class_index
from rustlab.errors import DataError


def datasets_module():
    """`datasets`, imported on first use (it is slow to import) and told to keep quiet."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def read_parquet(path):
    ds = datasets_module()
    try:
        return ds.load_dataset("parquet", data_files={"train": str(path)})
    except Exception as exc:
        raise DataError(f"cannot read parquet {path}: {str(exc).splitlines()[0]}") from None


def from_datasets(dsdict, spec: str, kind: str) -> Source:
    """A DatasetDict with an ``image`` column and a ``label`` (ClassLabel) and/or ``mask`` column."""
    ds = datasets_module()
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
        split_std = SPLIT_ALIASES.get(split_name.lower())
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
