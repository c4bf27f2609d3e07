"""Seeds of a recipe against a baseline on every set: accuracy per seed, mean and range, and the
paired-bootstrap 95% interval of the gap (seed-mean accuracy minus the baseline's, both scored on
the same resampled images), as experiments/recipe/compare.py does for one checkpoint.

Each checkpoint is scored by `rustlab.evaluate.evaluate_checkpoint(per_image=True)`, so every
model gets its own preprocessing (the pretrained models' mean/std) and split seed.

Usage (repo root): python experiments/pretrained/compare.py BASELINE_CKPT RUN_CKPT [RUN_CKPT ...] [--json]
"""

from __future__ import annotations

import argparse
import json

import torch

from rustlab.evaluate import evaluate_checkpoint

CLS = "../shared/data/corrosion-cls"
SEG = "../shared/data/corrosion-seg"
SETS = [(CLS, "validation"), (SEG, "validation"), (CLS, "test"), (SEG, "test"), ("builtin", "all")]
RESAMPLES = 2000


def correct(checkpoint: str, data: str, split: str) -> dict[str, bool]:
    result = evaluate_checkpoint(checkpoint, data=data, split=split, device="cpu", per_image=True)
    return {r["key"]: r["rust"] == r["predicted_rust"] for r in result["per_image"]}


def compare(baseline: str, runs: list[str], sets=SETS) -> list[dict]:
    rows = []
    generator = torch.Generator().manual_seed(0)
    for data, split in sets:
        base = correct(baseline, data, split)
        per_run = [correct(run, data, split) for run in runs]
        keys = sorted(set(base).intersection(*per_run))
        b = torch.tensor([base[k] for k in keys], dtype=torch.float64)
        a = torch.tensor([[r[k] for k in keys] for r in per_run], dtype=torch.float64)  # runs x images
        mean_a = a.mean(0)  # each image's share of seeds that got it right
        idx = torch.randint(len(keys), (RESAMPLES, len(keys)), generator=generator)
        gaps = (mean_a[idx] - b[idx]).mean(1).sort().values
        accs = a.mean(1).tolist()
        rows.append({"data": data, "split": split, "n": len(keys), "runs": accs, "mean": sum(accs) / len(accs),
                     "low": min(accs), "high": max(accs), "baseline": float(b.mean()),
                     "gap": float((mean_a - b).mean()), "gap_low": float(gaps[int(0.025 * RESAMPLES)]),
                     "gap_high": float(gaps[int(0.975 * RESAMPLES) - 1])})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = compare(args.baseline, args.runs)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| set | n | per seed | mean (range) | baseline | gap of the mean (points) | 95% interval |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data'].split('/')[-1]} {r['split']} | {r['n']} | {', '.join(f'{x:.3f}' for x in r['runs'])} "
              f"| {r['mean']:.3f} ({r['low']:.3f}-{r['high']:.3f}) | {r['baseline']:.3f} | {100 * r['gap']:+.1f} "
              f"| [{100 * r['gap_low']:+.1f}, {100 * r['gap_high']:+.1f}] |")


if __name__ == "__main__":
    main()
