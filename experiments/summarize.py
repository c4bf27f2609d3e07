"""Markdown table of run folders: best validation and test metrics, epochs, time.

Usage: python experiments/summarize.py RUN_DIR [RUN_DIR ...]
"""

import json
import sys
from pathlib import Path


def summarize(run_dirs):
    print("| run | image size | best epoch | val accuracy | test accuracy | test F1 | test ROC-AUC | train time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for run in map(Path, run_dirs):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        config = json.loads((run / "config.json").read_text())
        test = json.loads((run / "test_metrics.json").read_text())
        best = max(rows, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
        print(f"| {run.name} | {config['preprocessing']['image_size']} | {best['epoch']} | {best['val_accuracy']:.3f} "
              f"| {test['accuracy']:.3f} | {test['f1']:.3f} | {test['roc_auc']:.3f} | {sum(r['seconds'] for r in rows):.0f} |")


if __name__ == "__main__":
    summarize(sys.argv[1:])
