"""Leave-one-collector-out numbers from scored cells: seed means and ranges, and the paired
bootstrap of the accuracy gap between the model and the baseline on the same images."""

from __future__ import annotations

import random
import statistics

METRICS = ("accuracy", "recall", "specificity", "f1", "roc_auc")
RESAMPLES = 2000


def spread(values) -> dict:
    """Mean, min and max of the values that are not None (all None where there are none)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "min": None, "max": None}
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def paired_bootstrap(model_correct: dict, baseline_correct: dict, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Accuracy gap (model - baseline) and its 95% interval over images resampled with replacement.

    ``*_correct``: image key -> share of correct calls (the model's mean over seeds; 0 or 1 for
    one run); only images scored by both count."""
    keys = sorted(set(model_correct) & set(baseline_correct))
    if not keys:
        return {"gap": None, "low": None, "high": None, "n": 0}
    diffs = [model_correct[k] - baseline_correct[k] for k in keys]
    rng = random.Random(seed)
    n = len(diffs)
    gaps = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return {"gap": sum(diffs) / n, "low": gaps[int(0.025 * resamples)], "high": gaps[int(0.975 * resamples) - 1],
            "n": n}


def correct_by_key(cells) -> dict:
    """Image key -> share of the cells (seeds) that called it right."""
    votes: dict[str, list[int]] = {}
    for cell in cells:
        for row in cell["per_image"]:
            votes.setdefault(row["key"], []).append(int(row["predicted_rust"] == row["rust"]))
    return {k: sum(v) / len(v) for k, v in votes.items()}


def _metric(cell: dict, name: str):
    """A cell's metric, None where the scored images make it undefined: specificity of a set with
    no rust-free photo (a segmentation folder), recall of one with no rust photo."""
    rows = cell.get("per_image")
    if rows and name in ("specificity", "recall"):
        wanted = name == "recall"  # recall needs rust photos, specificity rust-free ones
        if not any(bool(r["rust"]) == wanted for r in rows):
            return None
    return cell.get(name)


def summarise(cells: list[dict], model: str, baseline: str) -> list[dict]:
    """One row per (role, scored source): the model's and the baseline's metrics and the gap."""
    rows = []
    order = []
    for cell in cells:
        if (cell["role"], cell["data"]) not in order:
            order.append((cell["role"], cell["data"]))
    for role, data in order:
        mine = [c for c in cells if c["role"] == role and c["data"] == data and c["model"] == model]
        base = [c for c in cells if c["role"] == role and c["data"] == data and c["model"] == baseline]
        row = {"role": role, "data": data, "n": (mine or base)[0]["n"], "seeds": len(mine),
               "model": {m: spread(_metric(c, m) for c in mine) for m in METRICS},
               "baseline": {m: spread(_metric(c, m) for c in base) for m in METRICS}}
        row["accuracy_gap"] = paired_bootstrap(correct_by_key(mine), correct_by_key(base)) if mine and base \
            else {"gap": None, "low": None, "high": None, "n": 0}
        rows.append(row)
    return rows
