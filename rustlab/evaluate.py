"""Score a checkpoint on a data source: the metrics of `rustlab evaluate`."""

from __future__ import annotations

from rustlab.errors import RustlabError

EVAL_SPLITS = ("test", "validation", "train", "all")


def _model_labels(labels, data_names, data_rust, model_names, model_rust):
    """Map a source's label indices onto the model's classes (by the rust / not-rust meaning)."""
    import torch

    if list(data_names) == list(model_names):
        return labels
    if len(model_names) != 2:
        raise RustlabError(f"data classes {data_names} do not match the model's {model_names}")
    known = labels >= 0
    is_rust = labels == data_rust
    mapped = torch.where(is_rust, torch.tensor(model_rust), torch.tensor(1 - model_rust))
    return torch.where(known, mapped, labels)


def evaluate_checkpoint(checkpoint, data: str | None = None, split: str = "test", device: str = "auto",
                        batch_size: int = 64, log=None) -> dict:
    """Metrics of ``checkpoint`` on ``split`` of ``data`` (default: the data it was trained on).

    The split is recomputed with the training run's split seed, so `test` is the same held-out set the
    trainer scored. ``all`` scores every image (for a set the model never saw).
    """
    from rustlab.checkpoint import build_model_from_checkpoint
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.device import resolve_device
    from rustlab.registry import get_task
    from rustlab.train import evaluate_decoded

    if split not in EVAL_SPLITS:
        raise RustlabError(f"--split {split}: expected one of {', '.join(EVAL_SPLITS)}")
    dev = resolve_device(device)
    model, meta = build_model_from_checkpoint(checkpoint)
    model.to(dev)
    task = get_task(meta["task"])
    train_args = meta.get("train_args", {})
    data = data or meta.get("data", {}).get("spec")
    if not data:
        raise RustlabError("--data is required: the checkpoint does not record its training data")
    # A task that can score without masks (a segmenter's image-level call) accepts label-only data.
    image_level = getattr(task, "without_masks", None)
    source = load_source(data, negatives=train_args.get("negatives") if data == meta["data"]["spec"] else None,
                         task=None if image_level else task.name)
    if task.target == "mask" and not source.has_masks:
        task = image_level()
    if split == "all":
        examples = source.examples
    else:
        split_seed = train_args.get("split_seed")  # None (or a run from before it existed): the seed
        seed = int(train_args.get("seed", 0) if split_seed is None else split_seed)
        examples = assign_splits(source, seed=seed)[split]
    if not examples:
        raise RustlabError(f"--data {data}: the {split} split is empty (try --split all)")
    size = int(meta["preprocessing"]["image_size"])
    decoded = load_decoded(examples, size, with_masks=task.target == "mask")
    if len(decoded) == 0:
        raise RustlabError(f"--data {data}: no readable images in the {split} split")
    decoded.labels = _model_labels(decoded.labels, source.class_names, source.rust_index,
                                   meta["class_names"], meta["rust_index"])
    metrics = evaluate_decoded(model, decoded, task, dev, meta["rust_index"], batch_size=batch_size,
                               calibration=meta.get("calibration"))
    return {
        "checkpoint": meta["path"],
        "model": meta["model"],
        "data": data,
        "split": split,
        "same_data_as_training": source.fingerprint() == meta.get("data", {}).get("fingerprint"),
        "skipped": [{"file": k, "reason": r} for k, r in decoded.skipped],
        **metrics,
    }
