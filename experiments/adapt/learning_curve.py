"""Site adaptation's learning curve, leave one collector out (issue 31 item 3).

For each held-out classification collector: the recommended recipe fitted on the other three
sources (the seed-0 checkpoints of `rustlab bench collectors`, corrected labels) stands in for
the default model a user has. n labelled photos of the held-out collector are drawn at random
(both classes present; 3 draws), the model is adapted to them exactly as `rustlab train --init`
does (``adapt``: its final call refitted, the prior's strength chosen by cross-validation on those
n photos only), and it is scored on the rest of that collector against the unadapted model on
the same rest. The rule was fixed in code (rustlab_pretrained.adapt) before this run; the held-out
rest is read once per draw, after the fit.

The segmentation collectors are left out: every photo in them shows rust, so a draw of them has
one class and a threshold cannot be fitted.

Usage (repo root, after experiments/audit/corrected_runs.sh made the LOCO runs):
    python experiments/adapt/learning_curve.py [--runs runs/collectors/effnet-cells-corrected/runs]
writes experiments/adapt/results.json, docs/adapt.png, and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

COLLECTORS = ("corrosion-cls", "metal-cls")
SIZES = (10, 25, 50, 100)
DRAWS = 3


def draw(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    while True:
        idx = torch.randperm(len(labels), generator=generator)[:n]
        if 0 < int(labels[idx].sum()) < n:  # a user labels photos of both kinds
            return idx


def accuracy(logits: torch.Tensor, is_rust: torch.Tensor, rust_index: int) -> float:
    return float(((logits.argmax(1) == rust_index) == is_rust).double().mean())


def curve(runs: Path, collector: str) -> dict:
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.inference.evaluate import _model_labels
    from rustlab.inference.loading import build_model_from_checkpoint

    model, meta = build_model_from_checkpoint(runs / f"effnet-lite0-cells-without-{collector}-seed0" /
                                              "best.safetensors", tta="none")
    source = load_source(f"../shared/data/{collector}", corrections="data/corrections")
    decoded = load_decoded(source.examples, int(meta["preprocessing"]["image_size"]))
    labels = _model_labels(decoded.labels, source.class_names, source.rust_index, meta["class_names"],
                           meta["rust_index"])
    rust = meta["rust_index"]
    start = time.perf_counter()
    encoded = model.encode(decoded.images)
    encode_s = time.perf_counter() - start
    is_rust = labels == rust
    shipped = copy.deepcopy(model.state_dict())
    rows = {"collector": collector, "photos": len(labels), "encode_s": round(encode_s, 1),
            "default": accuracy(model.logits_from_encoded(encoded), is_rust, rust), "sizes": {}}
    for n in SIZES:
        results = []
        for d in range(DRAWS):
            idx = draw(is_rust, n, seed=1000 * n + d)
            rest = torch.ones(len(labels), dtype=torch.bool)
            rest[idx] = False
            sub = {k: (v[idx] if torch.is_tensor(v) else v) for k, v in encoded.items()}
            model.load_state_dict(shipped)
            before = accuracy(model.logits_from_encoded({k: (v[rest] if torch.is_tensor(v) else v)
                                                         for k, v in encoded.items()}), is_rust[rest], rust)
            start = time.perf_counter()
            info = model.adapt(sub, labels[idx], rust)
            seconds = time.perf_counter() - start
            after = accuracy(model.logits_from_encoded({k: (v[rest] if torch.is_tensor(v) else v)
                                                        for k, v in encoded.items()}), is_rust[rest], rust)
            results.append({"draw": d, "before": before, "after": after, "fit_s": round(seconds, 3), **info})
        model.load_state_dict(shipped)
        rows["sizes"][n] = results
    return rows


def table(all_rows: list[dict]) -> str:
    lines = ["| held-out collector (photos) | default | " + " | ".join(f"{n} labelled" for n in SIZES) + " |",
             "|---|---|" + "---|" * len(SIZES)]
    gains = {n: [] for n in SIZES}
    for rows in all_rows:
        cells = []
        for n in SIZES:
            after = [r["after"] for r in rows["sizes"][n]]
            gain = statistics.fmean(r["after"] - r["before"] for r in rows["sizes"][n])
            gains[n].append(gain)
            cells.append(f"{statistics.fmean(after):.3f} ({min(after):.3f}-{max(after):.3f}; {100 * gain:+.1f})")
        lines.append(f"| {rows['collector']} ({rows['photos']}) | {rows['default']:.3f} | " + " | ".join(cells) + " |")
    lines.append("| **mean gain over the default, points** | | "
                 + " | ".join(f"**{100 * statistics.fmean(gains[n]):+.1f}**" for n in SIZES) + " |")
    return "\n".join(lines)


def plot(all_rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for rows, colour in zip(all_rows, ("tab:blue", "tab:orange")):
        means = [statistics.fmean(r["after"] for r in rows["sizes"][n]) for n in SIZES]
        lows = [min(r["after"] for r in rows["sizes"][n]) for n in SIZES]
        highs = [max(r["after"] for r in rows["sizes"][n]) for n in SIZES]
        ax.plot(SIZES, means, "o-", color=colour, label=f"{rows['collector']}, adapted")
        ax.fill_between(SIZES, lows, highs, color=colour, alpha=0.2)
        ax.axhline(rows["default"], color=colour, linestyle="--", label=f"{rows['collector']}, default")
    ax.set_xscale("log")
    ax.set_xticks(SIZES, [str(n) for n in SIZES])
    ax.set_xlabel("labelled photos of the held-out collector")
    ax.set_ylabel("accuracy on the rest of it")
    ax.set_title("rustlab train --init default: adapting to a new collector")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/collectors/effnet-cells-corrected/runs")
    args = parser.parse_args()
    all_rows = [curve(Path(args.runs), c) for c in COLLECTORS]
    Path("experiments/adapt/results.json").write_text(json.dumps(all_rows, indent=1))
    plot(all_rows, Path("docs/adapt.png"))
    print(table(all_rows))


if __name__ == "__main__":
    main()
