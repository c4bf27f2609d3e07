"""A lever, before and after, on the leave-one-collector-out matrix: two `rustlab bench collectors`
runs (same sources, same split seed) compared cell by cell, with the paired bootstrap of the
accuracy gap over the same photos (each photo's share of seeds that called it right).

Usage (repo root):
  .venv/bin/python experiments/collectors/lever_gap.py BEFORE_DIR BEFORE_MODEL AFTER_DIR AFTER_MODEL
e.g. runs/collectors/effnet-probe effnet-lite0-probe runs/collectors/effnet-cells effnet-lite0-cells
Prints a markdown table: scored source, role, n, before, after (mean (range) over seeds), gap.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from rustlab.bench.collectors_report import format_gap, format_spread
from rustlab.bench.collectors_stats import correct_by_key, paired_bootstrap, spread


def scored_cells(folder: str, model: str) -> dict:
    """(scored source, role) -> the cells (one per seed) of ``model`` in a bench output folder."""
    found = defaultdict(list)
    for path in sorted(Path(folder, "cells").glob(f"{model}-*.json")):
        cell = json.loads(path.read_text())
        role = "own test split" if "-all-sources-" in path.name else "held-out collector"
        found[(Path(cell["data"]).name, role)].append(cell)
    return found


def accuracy(cells) -> str:
    return format_spread(spread(c["accuracy"] for c in cells))


def main(before_dir: str, before_model: str, after_dir: str, after_model: str) -> None:
    before, after = scored_cells(before_dir, before_model), scored_cells(after_dir, after_model)
    print(f"| scored on | role | n | `{before_model}` | `{after_model}` | gap, points [95% paired bootstrap] |")
    print("|---|---|---|---|---|---|")
    for role in ("held-out collector", "own test split"):
        for key in [k for k in after if k[1] == role and k in before]:
            gap = paired_bootstrap(correct_by_key(after[key]), correct_by_key(before[key]))
            print(f"| {key[0]} | {role} | {gap['n']} | {accuracy(before[key])} | {accuracy(after[key])} | "
                  f"{format_gap(gap)} |")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
