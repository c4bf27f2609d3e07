"""PNG plots of training curves (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path


def plot_curves(rows: list[dict], monitor: str, path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    if rows and f"train_{monitor}" in rows[0]:
        ax_metric.plot(epochs, [r[f"train_{monitor}"] for r in rows], label="train (augmented)")
    ax_metric.plot(epochs, [r[f"val_{monitor}"] for r in rows], label="validation")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(monitor)
    ax_metric.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
