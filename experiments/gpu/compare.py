"""Seeds of a recipe against a baseline on several sets: mean accuracy over seeds (range), and the
accuracy gap with its paired-bootstrap 95% interval (per image: the share of seeds that called it
right, minus the baseline's call), through rustlab's own evaluate_checkpoint.

Usage (repo root): python experiments/gpu/compare.py OUT.json --baseline RULE_RUN \
    --runs RUN_S0 RUN_S1 RUN_S2 --set DATA:SPLIT [--set DATA:SPLIT ...] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics

from rustlab.bench.collectors_stats import paired_bootstrap
from rustlab.evaluate import evaluate_checkpoint


def correct(result: dict) -> dict:
    return {r["key"]: float(r["predicted_rust"] == r["rust"]) for r in result["per_image"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--runs", nargs="+", required=True)
    parser.add_argument("--set", dest="sets", action="append", required=True, help="DATA:SPLIT")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    rows = []
    for item in args.sets:
        data, _, split = item.rpartition(":")
        try:
            seeds = [evaluate_checkpoint(run, data, split, args.device, per_image=True) for run in args.runs]
            base = evaluate_checkpoint(args.baseline, data, split, args.device, per_image=True)
        except Exception as exc:  # one set that cannot be read must not lose the others
            rows.append({"data": data, "split": split, "error": f"{type(exc).__name__}: {exc}"})
            print(rows[-1], flush=True)
            continue
        votes = {}
        for result in seeds:
            for key, ok in correct(result).items():
                votes.setdefault(key, []).append(ok)
        model_correct = {k: sum(v) / len(v) for k, v in votes.items()}
        row = {"data": data, "split": split, "n": seeds[0]["n"], "baseline_accuracy": base["accuracy"],
               "gap": paired_bootstrap(model_correct, correct(base))}
        for metric in ("accuracy", "recall", "specificity", "roc_auc", "iou"):
            values = [r[metric] for r in seeds if r.get(metric) is not None]
            if values:
                row[metric] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
                               "seeds": values}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items()}), flush=True)
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
