"""Link the corrosion-cls no_rust images of the publisher's train split into a folder.

The U-Net's negatives must not include corrosion-cls' test images: that split scores the
segmenter's image-level call afterwards. Symlinks, so no photo is copied anywhere.
Usage: python experiments/unet/negatives.py CORROSION_CLS_DIR OUT_DIR
"""

import csv
import sys
from pathlib import Path

src, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for old in out.iterdir():
    if old.is_symlink():
        old.unlink()
n = 0
with open(src / "manifest.csv", newline="") as fh:
    for row in csv.DictReader(fh):
        if row["label"] == "no_rust" and row["author_split"] == "train":
            (out / Path(row["file"]).name).symlink_to(src / row["file"])
            n += 1
print(f"{n} no_rust images (author_split train) linked in {out}", file=sys.stderr)
