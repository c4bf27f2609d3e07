"""Binary metrics with rust as the positive class (small enough not to need scikit-learn)."""

from __future__ import annotations

import torch


def roc_auc(scores: torch.Tensor, positives: torch.Tensor) -> float | None:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count half).

    None when only one class is present (AUC is undefined there)."""
    scores = scores.double().flatten()
    positives = positives.bool().flatten()
    n_pos = int(positives.sum())
    n_neg = positives.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    # average ranks over ties
    uniq, inverse = torch.unique(scores, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, ranks)
    counts = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(ranks))
    ranks = (sums / counts)[inverse]
    u = ranks[positives].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def binary_metrics(pred_rust: torch.Tensor, true_rust: torch.Tensor, rust_score: torch.Tensor | None = None) -> dict:
    """Accuracy, precision, recall, specificity, F1 (rust positive), ROC-AUC and the confusion matrix."""
    pred = pred_rust.bool().flatten()
    true = true_rust.bool().flatten()
    tp = int((pred & true).sum())
    tn = int((~pred & ~true).sum())
    fp = int((pred & ~true).sum())
    fn = int((~pred & true).sum())
    n = tp + tn + fp + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "specificity": tn / (tn + fp) if tn + fp else 0.0,
        "f1": f1,
        "roc_auc": roc_auc(rust_score, true) if rust_score is not None else None,
        # rows: true no-rust / rust; columns: predicted no-rust / rust
        "confusion": [[tn, fp], [fn, tp]],
        "support": {"rust": tp + fn, "no_rust": tn + fp},
    }
