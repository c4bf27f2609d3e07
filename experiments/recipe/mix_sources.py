"""Build the "cls+seg" training folder: corrosion-cls (publisher's split) plus corrosion-seg photos
(all corroded) as extra rust examples, as symlinks, so no photo is copied.

corrosion-seg is split by source_group with rustlab's own seeded split (the one `rustlab evaluate
--data ../shared/data/corrosion-seg --split test` recomputes with seed 0): its train groups join
train/rust, its validation groups join validation/rust (selection then sees both sources), and
its test groups stay out of the folder, held out for scoring.

Usage (repo root): python experiments/recipe/mix_sources.py [OUT]   (default runs/data/cls+seg)
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits

CLS = Path("../shared/data/corrosion-cls")
SEG = "../shared/data/corrosion-seg"


def build(out: Path) -> dict:
    counts = {}
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out}: not empty; remove it first")

    def link(src: Path, split: str, label: str, name: str):
        target = out / split / label / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(src.resolve())
        counts[(split, label)] = counts.get((split, label), 0) + 1

    with open(CLS / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            link(CLS / row["file"], row["author_split"], row["label"], "cls_" + Path(row["file"]).name)
    seg_splits = assign_splits(load_source(SEG), seed=0)
    for split in ("train", "validation"):
        for ex in seg_splits[split]:
            link(Path(ex.image), split, "rust", "seg_" + Path(ex.image).name)
    return counts


if __name__ == "__main__":
    counts = build(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/data/cls+seg"))
    for (split, label), n in sorted(counts.items()):
        print(f"{split:<10} {label:<8} {n}")
