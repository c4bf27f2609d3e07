"""Why a U-Net trained on pipe-seg finds little of corrosion-seg's rust: the two collectors' masks
against the colour rule's rust-coloured pixels, and trained U-Nets' pixel errors on each.

For each segmentation source, on its seed-0 split (the one every recipe and `rustlab evaluate`
use): the share of the photo that is masked, the share that is rust-coloured (the `colour-rule`
plugin's hue, saturation and value band), and that colour mask scored as a segmentation (pixel
precision, recall, IoU; micro-averaged as `rustlab evaluate` does). Optionally, for U-Net run
folders made by unet_cross.sh, their pixel precision and recall and the share of rust photos
they call rust (the image-level recall), per scored source, from the evaluations they hold.

    python experiments/collectors/colour_pixels.py --runs runs/unet_cross/pipe-seg_base_s{0,1,2} \
        runs/unet_cross/corrosion-seg_base_s0 > experiments/collectors/colour_pixels.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from rustlab.data.images import load_mask, load_square
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits
from rustlab_colour.model import ColourRule, ColourRuleConfig

SIZE = 192  # the U-Net recipe's input size: its masks are scored at this size too


def rust_coloured(rgb: np.ndarray, rule: ColourRule) -> np.ndarray:
    """H x W x 3 uint8 -> H x W bool: inside the colour rule's hue, saturation and value band."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    return rule.rust_pixels(x)[0].numpy()


def source_row(spec: str, split: str, rule: ColourRule) -> dict:
    source = load_source(spec, needs_masks=True)
    examples = [e for e in assign_splits(source, seed=0)[split] if e.mask is not None]
    tp = fp = fn = masked = coloured = pixels = 0
    for e in examples:
        colour = rust_coloured(load_square(e.image, SIZE), rule)
        mask = load_mask(e.mask, SIZE).astype(bool)
        tp += int((colour & mask).sum())
        fp += int((colour & ~mask).sum())
        fn += int((~colour & mask).sum())
        masked, coloured, pixels = masked + int(mask.sum()), coloured + int(colour.sum()), pixels + mask.size
    return {"source": Path(spec).name, "split": split, "photos": len(examples), "masked share": masked / pixels,
            "rust-coloured share": coloured / pixels, "colour precision": tp / max(tp + fp, 1),
            "colour recall": tp / max(tp + fn, 1), "colour IoU": tp / max(tp + fp + fn, 1)}


def run_rows(run: Path) -> list[dict]:
    rows = []
    for path in sorted(run.glob("eval_on_*.json")):
        if path.stem.endswith("_validation"):
            continue
        m = json.loads(path.read_text())
        rows.append({"run": run.name, "scored on": Path(m["data"]).name, "split": m["split"], "photos": m["n"],
                     "pixel precision": m["pixel_precision"], "pixel recall": m["pixel_recall"], "IoU": m["iou"],
                     "rust photos called rust": m["recall"], "mean predicted area": m["mean_rust_area"]})
    return rows


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                     + ["| " + " | ".join(cell(r[k]) for k in keys) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default="../shared/data")
    parser.add_argument("--sources", nargs="+", default=["corrosion-seg", "pipe-seg"])
    parser.add_argument("--splits", nargs="+", default=["test", "validation"])
    parser.add_argument("--runs", nargs="*", type=Path, default=[])
    args = parser.parse_args()
    rule = ColourRule(ColourRuleConfig())
    rows = [source_row(f"{args.shared}/{name}", split, rule) for name in args.sources for split in args.splits]
    runs = f" --runs {' '.join(str(r) for r in args.runs)}" if args.runs else ""
    print(f"<!-- python experiments/collectors/colour_pixels.py{runs} -->")
    print(f"Masks against the colour rule's rust-coloured pixels ({SIZE} px, seed-0 split):\n")
    print(table(rows))
    runs = [r for run in args.runs for r in run_rows(run)]
    if runs:
        print("\nU-Nets (test-time flips as recorded in the run; unet_cross.sh's evaluations):\n")
        print(table(runs))


if __name__ == "__main__":
    main()
