"""Rule 10: does a mirror image help the classifier recipe? Validation accuracy of classifier
checkpoints scored plain and with their logits averaged over the photo and its horizontal mirror.

Usage (repo root; 1-3 min per checkpoint on 2 cores):
    python experiments/pretrained/classifier_flips.py runs/pretrained/cells288_s{0,1,2} [--json-out F]

`rustlab.inference.tta` flips segmenters only (a mask is flipped back onto the photo); this script wraps a
classifier the same way, here, so that the recipe can be measured before the product changes.
It scores the pooled validation split the trainer selects on (corrosion-cls + corrosion-seg) and
metal-cls' validation split (a collector neither trains on). Test splits are not read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rustlab.inference.loading import build_model_from_checkpoint
from rustlab.inference.evaluate import checkpoint_split, evaluate_decoded

SHARED = Path("../shared/data")
SETS = {"pooled": ["corrosion-cls", "corrosion-seg"], "metal-cls": ["metal-cls"]}


class MirrorAverage(torch.nn.Module):
    """A classifier's logits averaged over the photo and its horizontal mirror (nothing to flip back)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return (self.model(x) + self.model(x.flip(3))) / 2


def score(model, meta, names: list[str]) -> tuple[float, int]:
    """(accuracy, n) over the validation splits of ``names`` together."""
    right = total = 0
    for name in names:
        task, _, decoded = checkpoint_split(meta, str(SHARED / name), "validation")
        m = evaluate_decoded(model, decoded, task, torch.device("cpu"), meta["rust_index"], meta["preprocessing"],
                             calibration=meta.get("calibration"))
        right += round(m["accuracy"] * m["n"])
        total += m["n"]
    return right / total, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    rows = []
    for run in args.runs:
        plain, meta = build_model_from_checkpoint(run / "best.safetensors", tta="none")
        for view, model in (("plain", plain), ("hflip", MirrorAverage(plain).eval())):
            row = {"run": run.name, "view": view}
            for label, names in SETS.items():
                row[label], row[f"{label}_n"] = score(model, meta, names)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| run | view | pooled validation | metal-cls validation |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['view']} | {r['pooled']:.4f} ({r['pooled_n']}) | {r['metal-cls']:.4f} ({r['metal-cls_n']}) |")
    for view in ("plain", "hflip"):
        mine = [r["pooled"] for r in rows if r["view"] == view]
        print(f"{view}: pooled validation mean {sum(mine) / len(mine):.4f} over {len(mine)} checkpoints")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
