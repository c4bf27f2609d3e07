"""The leave-one-collector-out report from plain data (``run_collectors``' dict): markdown, JSON, PNG."""

from __future__ import annotations

import json
from pathlib import Path

from rustlab.bench.collectors_stats import METRICS


def _name(spec: str) -> str:
    return Path(str(spec).rstrip("/")).name or str(spec)


def format_spread(spread: dict) -> str:
    """``collectors_stats.spread`` as "mean (min-max)", the range left out where the seeds agree."""
    if spread["mean"] is None:
        return "-"
    if spread["max"] - spread["min"] < 5e-4:
        return f"{spread['mean']:.3f}"
    return f"{spread['mean']:.3f} ({spread['min']:.3f}-{spread['max']:.3f})"


def format_gap(gap: dict) -> str:
    """A paired-bootstrap gap in points with its 95% interval."""
    if gap["gap"] is None:
        return "-"
    return f"{100 * gap['gap']:+.1f} [{100 * gap['low']:+.1f}, {100 * gap['high']:+.1f}]"


def format_markdown(report: dict) -> str:
    plan = report["plan"]
    seeds = ", ".join(str(s) for s in plan["seeds"])
    lines = [f"Model `{plan['model']}` (recipe {plan['config'] or 'defaults'}"
             + (f", {plan['epochs']} epochs per cell" if plan["epochs"] else "")
             + (f", {plan['image_size']} px" if plan["image_size"] else "")
             + f"; seeds {seeds}; mean (range) over seeds) against `{plan['baseline']}`; "
             f"split seed {plan['split_seed']}; labels: "
             + (f"corrected by {plan['corrections']}" if plan.get("corrections") not in (None, "none")
                else "the publishers'") + ".", ""]
    header = ["scored on", "role", "n", "who", *METRICS, "accuracy gap, points [95% paired bootstrap]"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report["rows"]:
        for who in ("model", "baseline"):
            label = plan["model"] if who == "model" else plan["baseline"]
            gap = format_gap(row["accuracy_gap"]) if who == "model" else ""
            lines.append(f"| {_name(row['data'])} | {row['role']} | {row['n']} | {label} | "
                         + " | ".join(format_spread(row[who][m]) for m in METRICS) + f" | {gap} |")
    lines += ["", "Held-out collector: trained on every other source (train + validation), scored on all of it. "
              "Own test split: trained on every source, scored on that source's held-out test split."]
    return "\n".join(lines) + "\n"


def write_json(report: dict, path) -> Path:
    Path(path).write_text(json.dumps(report, indent=2))
    return Path(path)


def plot_accuracy(report: dict, path) -> Path:
    """Accuracy per scored source and role, model beside baseline, whiskers = seed range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(rows)), 3.6))
    width = 0.38
    for k, who in enumerate(("model", "baseline")):
        xs = [i + (k - 0.5) * width for i in range(len(rows))]
        acc = [r[who]["accuracy"] for r in rows]
        means = [a["mean"] or 0 for a in acc]
        errs = [[(a["mean"] or 0) - (a["min"] or 0) for a in acc], [(a["max"] or 0) - (a["mean"] or 0) for a in acc]]
        ax.bar(xs, means, width, yerr=errs, capsize=3,
               label=report["plan"]["model"] if who == "model" else report["plan"]["baseline"])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{_name(r['data'])}\n({'held out' if r['role'] == 'held-out collector' else 'test'})"
                        for r in rows], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.axhline(0.5, color="grey", lw=0.5, ls=":")
    ax.legend(fontsize=8)
    ax.set_title("leave-one-collector-out", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
