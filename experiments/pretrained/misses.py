"""The photos a classifier gets wrong on one split, with its rust probability: what the error
analysis in results.md reads. Each checkpoint is scored by `rustlab.inference.evaluate.evaluate_checkpoint`
(its own preprocessing and split seed), so the list is exactly what `rustlab evaluate` counts.

Usage (repo root):
    python experiments/pretrained/misses.py CKPT [CKPT ...] [--data ../shared/data/corrosion-cls] [--split test]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rustlab.inference.evaluate import evaluate_checkpoint


def misses(checkpoint: str, data: str, split: str, device: str) -> tuple[dict, list[dict]]:
    result = evaluate_checkpoint(checkpoint, data, split, device, per_image=True)
    wrong = [r for r in result["per_image"] if r["predicted_rust"] != r["rust"]]
    return result, sorted(wrong, key=lambda r: (r["rust"], r["key"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", default="../shared/data/corrosion-cls")
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    root = Path(args.data).resolve()
    for checkpoint in args.checkpoints:
        result, wrong = misses(checkpoint, args.data, args.split, args.device)
        print(f"{checkpoint}: accuracy {result['accuracy']:.3f}, {len(wrong)} of {result['n']} wrong")
        for r in wrong:
            truth = "rust" if r["rust"] else "no_rust"
            key = Path(r["key"])  # a folder source's key is the file's path: shown relative to the folder
            shown = key.relative_to(root) if key.is_relative_to(root) else key
            print(f"  labelled {truth:7s}  rust probability {r['rust_probability']:.3f}  {shown}")


if __name__ == "__main__":
    main()
