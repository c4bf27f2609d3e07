"""How well an audit's ranking finds the photos corrected by eye (data/corrections/<source>.csv).

The corrections were made blind to the audit: every photo of both classification sources looked
at in file-name order (contact sheets), the audit's scores hidden. This script then reads the
audit's ranking and asks, per source, how many of its top K are photos that were corrected.

    python experiments/audit/precision.py runs/audit-shared/audit.csv > experiments/audit/precision.md
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("corrosion-cls", "metal-cls")


def kind(reason: str) -> str:
    """The correction's kind, from the words of its reason."""
    if "non-ferrous" in reason or "zinc" in reason or "copper corrosion" in reason:
        return "another metal's corrosion"
    if "both classes" in reason:
        return "rust and clean in one photo"
    return "label contradicts the photo"


def main(audit_csv: str) -> None:
    rows = list(csv.DictReader(open(audit_csv, newline="")))
    print(f"Audit: `{audit_csv}` ({len(rows)} photos). Corrections: `data/corrections/<source>.csv`, made by eye, "
          "blind to the audit.\n")
    print("| source | photos | corrected by eye | of them: label contradicts the photo | top 10 | top 50 | "
          "top 50, contradictions only | flagged by cleanlab (corrected) | corrected found in top 200 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for source in SOURCES:
        fixes = {r["file"]: kind(r["reason"]) for r in csv.DictReader(open(ROOT / "data" / "corrections" / f"{source}.csv"))}
        ranked = [r for r in rows if r["source"] == source]  # audit.csv is in rank order
        top = lambda k: [r["file"] for r in ranked[:k]]  # noqa: E731
        hits = lambda k, only=None: sum(f in fixes and (only is None or fixes[f] == only) for f in top(k))  # noqa: E731
        flagged = [r["file"] for r in ranked if r["flagged"] == "True"]
        strict = sum(v == "label contradicts the photo" for v in fixes.values())
        print(f"| {source} | {len(ranked)} | {len(fixes)} | {strict} | {hits(10)}/10 | {hits(50)}/50 = {hits(50) / 50:.2f} | "
              f"{hits(50, 'label contradicts the photo')}/50 | {len(flagged)} ({sum(f in fixes for f in flagged)}) | "
              f"{hits(200)}/{len(fixes)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/audit-shared/audit.csv")
