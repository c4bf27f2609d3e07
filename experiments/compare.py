"""Checkpoints against a baseline on every set: accuracy per seed, mean and range, and the
paired-bootstrap 95% interval of the gap (per image: the share of seeds that called it right,
minus the baseline's call; ``rustlab.bench.collectors_stats.paired_bootstrap``, the interval
`rustlab bench collectors` reports).

Each checkpoint is scored by `rustlab.inference.evaluate.evaluate_checkpoint(per_image=True)`, so every
model gets its own preprocessing (the pretrained models' mean/std) and split seed. A set that
cannot be read becomes an error row; the others are still scored. One run against the baseline
is the two-model comparison (it replaced experiments/recipe/compare.py, whose job it did); give
the recipe study's sets with --set (experiments/recipe/results.md shows the command).

Usage (repo root):
    python experiments/compare.py BASELINE_CKPT RUN_CKPT [RUN_CKPT ...]
        [--set DATA:SPLIT ...] [--device cpu|cuda|auto] [--json-out FILE.json] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics

from rustlab.bench.collectors_stats import paired_bootstrap
from rustlab.inference.evaluate import evaluate_checkpoint

CLS = "../shared/data/corrosion-cls"
SEG = "../shared/data/corrosion-seg"
SETS = [f"{CLS}:validation", f"{SEG}:validation", f"{CLS}:test", f"{SEG}:test", "builtin:all"]


def correct(result: dict) -> dict[str, float]:
    return {r["key"]: float(r["predicted_rust"] == r["rust"]) for r in result["per_image"]}


def compare_set(baseline: str, runs: list[str], data: str, split: str, device: str) -> dict:
    seeds = [evaluate_checkpoint(run, data, split, device, per_image=True) for run in runs]
    base = evaluate_checkpoint(baseline, data, split, device, per_image=True)
    votes: dict[str, list[float]] = {}
    for result in seeds:
        for key, ok in correct(result).items():
            votes.setdefault(key, []).append(ok)
    row = {"data": data, "split": split, "n": seeds[0]["n"], "baseline_accuracy": base["accuracy"],
           "gap": paired_bootstrap({k: sum(v) / len(v) for k, v in votes.items()}, correct(base))}
    for metric in ("accuracy", "recall", "specificity", "roc_auc", "iou"):
        values = [r[metric] for r in seeds if r.get(metric) is not None]
        if values:
            row[metric] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "seeds": values}
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| set | n | per seed | mean (range) | baseline | gap of the mean (points) | 95% interval |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"{r['data'].rstrip('/').split('/')[-1]} {r['split']}"
        if "error" in r:
            lines.append(f"| {name} | - | {r['error']} | | | | |")
            continue
        a, g = r["accuracy"], r["gap"]
        lines.append(f"| {name} | {r['n']} | {', '.join(f'{x:.3f}' for x in a['seeds'])} "
                     f"| {a['mean']:.3f} ({a['min']:.3f}-{a['max']:.3f}) | {r['baseline_accuracy']:.3f} "
                     f"| {100 * g['gap']:+.1f} | [{100 * g['low']:+.1f}, {100 * g['high']:+.1f}] |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--set", dest="sets", action="append", default=None, help="DATA:SPLIT (repeatable)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json-out", default=None, help="also write the rows here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args()
    rows = []
    for item in args.sets or SETS:
        data, _, split = item.rpartition(":")
        try:
            rows.append(compare_set(args.baseline, args.runs, data, split, args.device))
        except Exception as exc:  # one set that cannot be read must not lose the others
            rows.append({"data": data, "split": split, "error": f"{type(exc).__name__}: {exc}"})
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(rows, fh, indent=2)
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
