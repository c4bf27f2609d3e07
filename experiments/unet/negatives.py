"""Link corrosion-cls photos into a folder (symlinks: no photo is copied anywhere).

- ``negatives.py CORROSION_CLS_DIR OUT_DIR``: the no_rust photos of the publisher's train split,
  the U-Net's ``--negatives`` (empty masks);
- ``negatives.py CORROSION_CLS_DIR OUT_DIR --labelled``: every other photo outside its test split
  (rust/ of train and validation, no_rust/ of validation), a classification source for
  ``--extra-data``: photos with a label and no mask, which the loss's image-level term learns from.

Either way corrosion-cls' test split stays out: it scores the segmenter's image-level call
afterwards, and the two folders share no photo.
"""

import csv
import sys
from pathlib import Path

src, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
labelled = "--labelled" in sys.argv[3:]


def wanted(row) -> str | None:
    """The folder (under OUT_DIR) a manifest row goes to, or None."""
    if row["author_split"] == "test":
        return None
    if not labelled:
        return "." if row["label"] == "no_rust" and row["author_split"] == "train" else None
    if row["label"] == "rust" or row["author_split"] != "train":
        return row["label"]
    return None


for folder in (out / "rust", out / "no_rust", out) if labelled else (out,):
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_symlink():
            old.unlink()
n = 0
with open(src / "manifest.csv", newline="") as fh:
    for row in csv.DictReader(fh):
        folder = wanted(row)
        if folder is not None:
            (out / folder / Path(row["file"]).name).symlink_to(src / row["file"])
            n += 1
print(f"{n} images linked in {out} ({'labelled: rust/, no_rust/' if labelled else 'negatives'})", file=sys.stderr)
