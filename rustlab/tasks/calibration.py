"""Confidence calibration: temperature scaling, expected calibration error, reliability diagrams.

A softmax score is not a probability: a network trained to low loss is usually over-confident.
Temperature scaling (Guo et al., 2017) divides the logits by one scalar T fitted on held-out
(validation) data by negative log-likelihood. T > 0 never changes which class has the largest
logit, so the predicted labels, accuracy and ROC-AUC stay exactly as they were; only the
confidence moves.

NumPy only (matplotlib lazily, for the plot): the ONNX predictor reads temperatures through this
module without importing torch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rustlab.errors import RustlabError

ECE_BINS = 15
# The search interval for T. Above 1 softens an over-confident model; below 1 sharpens an
# under-confident one. The lower bound matters when validation has no mistakes: the NLL then
# keeps falling as T -> 0, and a tiny T would turn every score into 1.0.
TEMPERATURE_BOUNDS = (0.05, 50.0)


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64 (stable for large logits)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of integer ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    labels = np.asarray(labels, dtype=np.int64)
    m = z.max(axis=1, keepdims=True)
    log_norm = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def fit_temperature(logits, labels, bounds: tuple[float, float] = TEMPERATURE_BOUNDS, tol: float = 1e-5) -> float:
    """The T in ``bounds`` that minimises the NLL: a golden-section search over log T.

    The NLL is convex in 1/T (a log-sum-exp of functions linear in 1/T, minus a linear term), so
    it has a single minimum along any monotone reparametrisation such as log T; a bounded 1-D
    search finds it deterministically, without an optimizer's step size or state.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise RustlabError(f"temperature fit needs N x C logits and N labels, got {logits.shape} and {labels.shape}")
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    f = lambda log_t: nll(logits, labels, math.exp(log_t))  # noqa: E731
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    # The ends are candidates too: golden section never evaluates them, and with no mistakes on
    # validation the minimum sits on the lower bound.
    best = min((fc, c), (fd, d), (f(lo), lo), (f(hi), hi))[1]
    return float(math.exp(best))


def temperature_of(calibration: dict | None) -> float:
    """The temperature stored in a checkpoint's ``calibration`` (1.0 when there is none)."""
    value = (calibration or {}).get("temperature")
    if value is None:
        return 1.0
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if not math.isfinite(t) or t <= 0:
        raise RustlabError(f"calibration temperature {value!r} is not a positive number (damaged metadata?)")
    return t


def reliability_bins(confidence, correct, n_bins: int = ECE_BINS) -> dict:
    """Per equal-width confidence bin ((i/n, (i+1)/n], the first also holding 0): the count,
    mean confidence and accuracy (None for an empty bin). JSON-able, and all a diagram needs."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    hit_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    mean = lambda s: [float(s[i] / count[i]) if count[i] else None for i in range(n_bins)]  # noqa: E731
    return {"count": [int(c) for c in count], "confidence": mean(conf_sum), "accuracy": mean(hit_sum)}


def ece_from_bins(bins: dict) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over bins."""
    total = sum(bins["count"])
    if total == 0:
        return 0.0
    return float(sum(n * abs(acc - conf) for n, conf, acc in zip(bins["count"], bins["confidence"], bins["accuracy"])
                     if n) / total)


def expected_calibration_error(confidence, correct, n_bins: int = ECE_BINS) -> float:
    """ECE with ``n_bins`` equal-width bins of the top-label confidence (15 as in Guo et al.)."""
    return ece_from_bins(reliability_bins(confidence, correct, n_bins))


def top_label(logits, labels, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(confidence of the predicted class at ``temperature``, whether it is the true class) per
    row. The predicted class is the argmax of the logits, the label the user is shown."""
    logits = np.asarray(logits, dtype=np.float64)
    pred = logits.argmax(axis=1)
    confidence = softmax(logits, temperature)[np.arange(len(pred)), pred]
    return confidence, pred == np.asarray(labels)


def plot_reliability(curves: dict, path, title: str = "") -> Path:
    """A reliability diagram per entry of ``curves`` (name -> reliability_bins), side by side.

    Bars: accuracy per confidence bin (the number of images at their foot); the diagonal is
    perfect calibration; hatched red is the gap to the bin's mean confidence. Each panel's title
    gives the ECE and the number of images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4.4), squeeze=False)
    for ax, (name, bins) in zip(axes[0], curves.items()):
        n_bins = len(bins["count"])
        width = 1.0 / n_bins
        left = np.arange(n_bins) * width
        filled = [i for i in range(n_bins) if bins["count"][i]]
        acc = np.array([bins["accuracy"][i] for i in filled])
        conf = np.array([bins["confidence"][i] for i in filled])
        ax.bar(left[filled], acc, width=width, align="edge", color="#4c72b0", edgecolor="white", label="accuracy")
        # the gap spans accuracy..confidence: above the bar when over-confident, inside it when under
        ax.bar(left[filled], np.abs(conf - acc), bottom=np.minimum(acc, conf), width=width, align="edge",
               facecolor="none", edgecolor="#c44e52", hatch="///", linewidth=0.8, label="gap to mean confidence")
        for i in filled:  # images per bin: a 2-image bin says little
            ax.text(left[i] + width / 2, 0.01, str(bins["count"][i]), ha="center", va="bottom", fontsize=6,
                    color="white")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (predicted class)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: ECE {ece_from_bins(bins):.3f} (n={sum(bins['count'])})", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_reliability_metrics(metrics: dict, path, title: str = "") -> Path:
    """The before/after reliability diagram of a classification result (its ``reliability``)."""
    rel = metrics["reliability"]
    curves = {"uncalibrated": rel["uncalibrated"]}
    if "calibrated" in rel:
        curves[f"calibrated (T = {metrics['temperature']:.3g})"] = rel["calibrated"]
    return plot_reliability(curves, path, title)
