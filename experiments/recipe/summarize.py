"""Markdown table of recipe runs: validation (what selects), then test and the other sources.

Usage (repo root): python experiments/recipe/summarize.py RUN_DIR [RUN_DIR ...]
Each RUN_DIR is a `rustlab train` folder holding scores.json, written by
`python experiments/recipe/posthoc.py RUN_DIR/best.safetensors --json > RUN_DIR/scores.json`.
"""

import json
import sys
from pathlib import Path


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def row(run: Path) -> str:
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run / "config.json").read_text())
    scores = {(Path(r["data"]).name, r["split"]): r for r in json.loads((run / "scores.json").read_text())}
    best = max(history, key=lambda r: (r["val_accuracy"], -r["val_loss"]))  # the trainer's own rule
    trained_on_seg = ("corrosion-seg" in json.dumps(config["data"]) or "seg" in config["data"]["spec"]
                      or any("corrosion-seg" in d for d in config["train_args"].get("extra_data", [])))
    seg_all = "(seen)" if trained_on_seg else _fmt(scores[("corrosion-seg", "all")]["accuracy"])
    test = scores[("corrosion-cls", "test")]
    cls_val, seg_val = scores[("corrosion-cls", "validation")], scores[("corrosion-seg", "validation")]
    pooled = (cls_val["accuracy"] * cls_val["n"] + seg_val["accuracy"] * seg_val["n"]) / (cls_val["n"] + seg_val["n"])
    return (f"| {run.name} | {config['preprocessing']['image_size']} | {len(history)} ({best['epoch']}) "
            f"| {_fmt(pooled)} | {_fmt(cls_val['accuracy'])} | {_fmt(seg_val['accuracy'])} | {_fmt(test['accuracy'])} "
            f"| {_fmt(test['f1'])} | {_fmt(test['roc_auc'])} | {_fmt(scores[('corrosion-seg', 'test')]['accuracy'])} "
            f"| {seg_all} | {_fmt(scores[('builtin', 'all')]['accuracy'])} | {_fmt(scores[('builtin', 'all')]['roc_auc'])} "
            f"| {sum(r['seconds'] for r in history):.0f} |")


def main(run_dirs):
    print("| run | px | epochs (best) | **val acc (cls+seg, selects)** | cls val acc | seg val acc | cls test acc "
          "| cls test F1 | cls test AUC | seg test acc | seg all acc | builtin acc | builtin AUC | train s (wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in map(Path, run_dirs):
        print(row(run))


if __name__ == "__main__":
    main(sys.argv[1:])
