"""Rule 11: the U-Net recipe's image call from its rust area against an image-call head.

Usage (repo root), after the runs and their evaluations (commands in experiments/unet/results.md):
    python experiments/unet/call_head.py runs/unet_cross/corrosion-seg_px192-ema_s{0,1,2} \\
        runs/unet_cross/corrosion-seg_px192-ema-head_s{0,1,2} [--test]

Prints one row per run and the mean of each group of runs (by name, less the seed): the image call
on corrosion-cls validation, on the run's own validation split (corrosion-seg scenes + negatives)
and on metal-cls validation, with the validation rust IoU. ``--test`` adds the test columns,
to be read only after the decision.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

VALIDATION = {"corrosion-cls val call": ("eval_corrosion-cls_validation.json", "accuracy"),
              "own val call": ("eval_seg_validation.json", "accuracy"),
              "metal-cls val call": ("eval_metal-cls_validation.json", "accuracy"),
              "val rust IoU": ("eval_seg_validation.json", "iou")}
TEST = {"corrosion-cls test call": ("eval_cls_test.json", "accuracy"),
        "corrosion-cls test ROC-AUC": ("eval_cls_test.json", "roc_auc"),
        "test rust IoU": ("eval_seg_test.json", "iou")}


def read(run: Path, file: str, key: str):
    path = run / file
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())
    return (rows[0] if isinstance(rows, list) else rows).get(key)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--test", action="store_true", help="add the test columns (after the decision)")
    args = parser.parse_args()
    columns = {**VALIDATION, **(TEST if args.test else {})}
    print("| run | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    groups: dict[str, list[dict]] = {}
    for run in args.runs:
        row = {name: read(run, *where) for name, where in columns.items()}
        groups.setdefault(re.sub(r"_s\d+$", "", run.name), []).append(row)
        print(f"| {run.name} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in row.values()) + " |")
    for group, rows in groups.items():
        means = []
        for name in columns:
            values = [r[name] for r in rows if r[name] is not None]
            means.append(f"**{sum(values) / len(values):.3f}** ({min(values):.3f}-{max(values):.3f})" if values else "-")
        print(f"| {group}, mean of {len(rows)} (range) | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
