"""Accuracy gap between two checkpoints on every set, with a paired bootstrap 95% interval
(both models scored on the same resampled images), so a few-point gap on 98-600 images is read
with its noise.

Usage (repo root): python experiments/recipe/compare.py MODEL_CKPT BASELINE_CKPT [--json]
"""

from __future__ import annotations

import argparse
import json

import torch

from posthoc import SETS, rust_probability  # same folder: run as a script from the repo root
from rustlab.inference.loading import build_model_from_checkpoint
from rustlab.data.cache import load_decoded
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits
from rustlab.inference.evaluate import _model_labels

RESAMPLES = 2000


def correct(checkpoint: str, data: str, split: str) -> torch.Tensor:
    model, meta = build_model_from_checkpoint(checkpoint)
    source = load_source(data)
    examples = source.examples if split == "all" else assign_splits(source, seed=0)[split]
    decoded = load_decoded(examples, int(meta["preprocessing"]["image_size"]))
    labels = _model_labels(decoded.labels, source.class_names, source.rust_index, meta["class_names"],
                           meta["rust_index"])
    return (rust_probability([(model, meta)], decoded.images, tta=False) > 0.5) == (labels == meta["rust_index"])


def compare(model_ckpt: str, baseline_ckpt: str) -> list[dict]:
    rows = []
    generator = torch.Generator().manual_seed(0)
    for data, split in SETS:
        a, b = correct(model_ckpt, data, split).double(), correct(baseline_ckpt, data, split).double()
        idx = torch.randint(len(a), (RESAMPLES, len(a)), generator=generator)
        gaps = (a[idx] - b[idx]).mean(1).sort().values
        rows.append({"data": data, "split": split, "n": len(a), "model": float(a.mean()), "baseline": float(b.mean()),
                     "gap": float((a - b).mean()), "gap_low": float(gaps[int(0.025 * RESAMPLES)]),
                     "gap_high": float(gaps[int(0.975 * RESAMPLES) - 1])})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("baseline")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = compare(args.model, args.baseline)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| set | n | model acc | baseline acc | gap (points) | 95% interval |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data'].split('/')[-1]} {r['split']} | {r['n']} | {r['model']:.3f} | {r['baseline']:.3f} "
              f"| {100 * r['gap']:+.1f} | [{100 * r['gap_low']:+.1f}, {100 * r['gap_high']:+.1f}] |")


if __name__ == "__main__":
    main()
