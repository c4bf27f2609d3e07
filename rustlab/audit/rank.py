"""Which labels are probably wrong: confident learning (cleanlab) on out-of-fold probabilities.

``cleanlab`` (Northcutt et al., "Confident Learning", JAIR 2021) is the well-kept implementation:
``find_label_issues`` estimates the joint distribution of given and true labels from the
out-of-fold probabilities and flags the photos it would prune, and ``get_label_quality_scores``
gives every photo a score in [0, 1] (low = suspicious) that orders the review.
"""

from __future__ import annotations

import numpy as np


def rank_labels(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """``labels``: given class indices (N, all known); ``probabilities``: out-of-fold, N x classes.

    Returns ``score`` (N, label quality: the out-of-fold probability of the given label),
    ``flagged`` (N bool: confident learning's label issues) and ``rank`` (N, 1 = most suspicious:
    flagged photos first, each part by score)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(1, keepdims=True)
    score = get_label_quality_scores(labels, probabilities, method="self_confidence")
    flagged = find_label_issues(labels, probabilities, filter_by="prune_by_noise_rate")
    order = np.lexsort((score, ~flagged))  # flagged first, then by score (lowest first)
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(1, len(labels) + 1)
    return {"score": score, "flagged": np.asarray(flagged, dtype=bool), "rank": rank}
