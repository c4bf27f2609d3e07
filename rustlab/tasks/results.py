"""The per-image result dicts that ``Task.interpret_numpy`` returns, built from plain numbers in
a torch-free module, so the fields the CLI, GUI and JSON read exist in one place."""

from __future__ import annotations


def classification_results(probs, predicted, meta: dict) -> list[dict]:
    """``probs``: rows of class probabilities; ``predicted``: the class index of each row."""
    names, rust_index = meta["class_names"], meta["rust_index"]
    results = []
    for row, k in zip(probs, predicted):
        k = int(k)
        results.append({
            "label": names[k],
            "is_rust": k == rust_index,
            "confidence": float(row[k]),
            "rust_probability": float(row[rust_index]),
            "probabilities": {n: float(p) for n, p in zip(names, row)},
        })
    return results


def segmentation_results(area, p_rust, masks, area_threshold: float | None, meta: dict) -> list[dict]:
    """``area``: rust share of each image's pixels; ``p_rust``: the image-level rust probability;
    ``masks``: each image's per-pixel rust probabilities (H x W NumPy). The call is area above
    ``area_threshold``, or, where it is None (an image-call head), ``p_rust`` >= 0.5."""
    names = list(meta["class_names"])
    rust_name = names[int(meta["rust_index"])]
    other = names[1 - int(meta["rust_index"])] if len(names) == 2 else f"no_{rust_name}"
    results = []
    for a, p, mask in zip(area, p_rust, masks):
        is_rust = bool(p >= 0.5) if area_threshold is None else bool(a > area_threshold)
        p = float(p)
        results.append({
            "label": rust_name if is_rust else other,
            "is_rust": is_rust,
            "confidence": p if is_rust else 1.0 - p,
            "rust_probability": p,
            "probabilities": {other: 1.0 - p, rust_name: p},
            "rust_area": float(a),
            "mask": mask,
        })
    return results
