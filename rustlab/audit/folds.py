"""Out-of-fold probabilities: every photo scored by a model fitted on the other folds only.

The audit's evidence against a label must come from a model that never saw that label: k folds,
stratified by (source, label) and grouped by scene (a ``group`` never straddles two folds), as
scikit-learn's ``StratifiedGroupKFold`` cuts them. A model fitted in closed form that offers
``encode(images)`` (the frozen backbone's features), ``fit(..., encoded=)`` and
``logits_from_encoded`` is read through its backbone once;
each fold then refits only its heads and scores from the same features.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

import numpy as np
import torch

from rustlab.errors import RustlabError


@dataclass
class OutOfFold:
    probabilities: np.ndarray  # N x classes, each row from the fold that did not see the photo
    cells: np.ndarray | None  # N x h x w rust probability per cell (models that score cells), else None
    folds: np.ndarray  # N: the fold of each photo


def fold_of(labels: np.ndarray, strata: list, groups: list, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every photo: stratified by ``strata``, whole ``groups`` per fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    strata_ids = np.unique(np.asarray([str(s) for s in strata]), return_inverse=True)[1]
    group_ids = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)[1]
    out = np.full(len(labels), -1, dtype=np.int64)
    cutter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(cutter.split(np.zeros(len(labels)), strata_ids, group_ids)):
        out[held] = k
    return out


def take_rows(encoded: dict, index: torch.Tensor) -> dict:
    """The photos ``index`` of an ``encode`` result (every tensor's first dimension is the photo)."""
    return {k: v[index] if isinstance(v, torch.Tensor) else v for k, v in encoded.items()}


def out_of_fold(model, images: torch.Tensor, labels: torch.Tensor, fold: np.ndarray, rust_index: int, *,
                masks: torch.Tensor | None = None, sources: list | None = None,
                sample_weight: torch.Tensor | None = None, preprocessing: dict | None = None,
                log=None) -> OutOfFold:
    """Fit a copy of ``model`` (closed form: ``fit(images, labels, rust_index, ...)``) on every fold's
    complement and score the fold. ``labels``: class indices, -1 = unknown (scored, not fitted)."""
    from rustlab.data.transforms import normalize

    takes = inspect.signature(model.fit).parameters
    device = next(iter([*model.parameters(), *model.buffers()]), torch.empty(0)).device
    encoded = model.encode(images) if callable(getattr(model, "encode", None)) and "encoded" in takes else None
    probabilities, cells = None, None
    for k in range(int(fold.max()) + 1):
        held = torch.from_numpy(np.flatnonzero(fold == k))
        train = torch.from_numpy(np.flatnonzero(fold != k))
        fitted = copy.deepcopy(model)
        kwargs = {}
        if "sample_weight" in takes and sample_weight is not None:
            kwargs["sample_weight"] = sample_weight[train]
        if "masks" in takes and masks is not None:
            kwargs["masks"] = masks[train]
        if "sources" in takes and sources is not None:
            kwargs["sources"] = [sources[i] for i in train.tolist()]
        if encoded is not None:
            kwargs["encoded"] = take_rows(encoded, train)
        # without encode, the fit reads the photos themselves, on the model's device (as the trainer's)
        fit_images, fit_labels = (images[train], labels[train]) if encoded is not None else \
            (images[train].to(device), labels[train].to(device))
        try:
            fitted.fit(fit_images, fit_labels, rust_index, **kwargs)
        except ValueError as exc:  # e.g. a class too small to appear in every fold's complement
            raise RustlabError(f"audit: fold {k + 1}: {exc}") from None
        with torch.inference_mode():
            if encoded is not None:
                logits = fitted.logits_from_encoded(take_rows(encoded, held))
            else:
                fitted.eval()
                logits = torch.cat([fitted(normalize(images[held[i:i + 64]].to(device), preprocessing["mean"],
                                                     preprocessing["std"])) for i in range(0, len(held), 64)])
        p = torch.softmax(logits.float(), 1).cpu().numpy()
        probabilities = np.zeros((len(labels), p.shape[1])) if probabilities is None else probabilities
        probabilities[held.numpy()] = p
        cell_p = fitted.cell_probabilities(take_rows(encoded, held)) \
            if encoded is not None and callable(getattr(fitted, "cell_probabilities", None)) else None
        if cell_p is not None:
            cells = np.zeros((len(labels), *cell_p.shape[1:]), dtype=np.float32) if cells is None else cells
            cells[held.numpy()] = cell_p.cpu().numpy()
        if log is not None:
            log(f"  fold {k + 1}/{int(fold.max()) + 1}: fitted on {len(train)}, scored {len(held)}")
    return OutOfFold(probabilities, cells, fold)
