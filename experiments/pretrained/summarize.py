"""One row per run folder of experiments/pretrained/run.sh: accuracy per set and the cost.

Usage (repo root): python experiments/pretrained/summarize.py runs/pretrained/RUN [RUN ...]
Reads RUN/eval_test.json, eval_validation.json, eval_builtin.json (rustlab evaluate --json),
metrics.jsonl (per-epoch seconds) and wall.txt (train wall seconds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def accuracies(path: Path) -> dict:
    rows = json.loads(path.read_text())
    rows = rows if isinstance(rows, list) else [rows]
    return {(Path(r["data"]).name, r["split"]): r["accuracy"] for r in rows}


def summarize(run: Path) -> dict:
    acc = {**accuracies(run / "eval_test.json"), **accuracies(run / "eval_validation.json"),
           **accuracies(run / "eval_builtin.json")}
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    config = json.loads((run / "config.json").read_text())
    n_train = config.get("data", {}).get("counts", {}).get("train")
    seconds = sum(e["seconds"] for e in epochs)
    wall = (run / "wall.txt").read_text().split()[-1] if (run / "wall.txt").is_file() else "?"
    return {"run": run.name, "acc": acc, "epochs": len(epochs), "epoch_seconds": seconds, "wall": wall,
            "img_s": (n_train * len(epochs) / seconds) if n_train and seconds else None}


def main():
    keys = [("corrosion-cls", "validation"), ("corrosion-seg", "validation"), ("corrosion-cls", "test"),
            ("corrosion-seg", "test"), ("builtin", "all")]
    print("| run | " + " | ".join(f"{d} {s}" for d, s in keys) + " | epochs | epoch s (sum) | train wall s | train img/s |")
    print("|---|" + "---|" * (len(keys) + 4))
    for arg in sys.argv[1:]:
        r = summarize(Path(arg))
        cells = [f"{r['acc'][k]:.3f}" if k in r["acc"] else "-" for k in keys]
        img_s = f"{r['img_s']:.1f}" if r["img_s"] else "-"
        print(f"| {r['run']} | " + " | ".join(cells) + f" | {r['epochs']} | {r['epoch_seconds']:.0f} | {r['wall']} | {img_s} |")


if __name__ == "__main__":
    main()
