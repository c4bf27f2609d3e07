"""One PNG of the recipe runs' curves: training and validation accuracy and loss per epoch.

Usage (repo root): python experiments/recipe/plot_curves.py OUT.png RUN_DIR [RUN_DIR ...]
"""

import json
import sys
from pathlib import Path


def main(out: str, run_dirs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, run in enumerate(map(Path, run_dirs)):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        if len(rows) < 2:  # the colour rule has one "epoch": nothing to draw
            continue
        epochs = [r["epoch"] for r in rows]
        colour = f"C{i}"
        acc_ax.plot(epochs, [r["val_accuracy"] for r in rows], color=colour, label=f"{run.name} val")
        acc_ax.plot(epochs, [r["train_accuracy"] for r in rows], color=colour, ls=":", alpha=0.7)
        loss_ax.plot(epochs, [r["val_loss"] for r in rows], color=colour, label=f"{run.name} val")
        loss_ax.plot(epochs, [r["train_loss"] for r in rows], color=colour, ls=":", alpha=0.7)
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy (solid: validation, dotted: train, augmented)")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("validation = the run's own validation split: corrosion-cls (301) or, for cls+seg runs, "
                 "corrosion-cls + corrosion-seg groups (399)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
