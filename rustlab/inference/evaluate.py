"""Evaluation passes: a model's outputs and metrics over a decoded split (used by the trainer
after every epoch and at the end), the post-training calibration fit, and `rustlab evaluate`
(a checkpoint on a data source)."""

from __future__ import annotations

from pathlib import Path

from rustlab.errors import RustlabError

EVAL_SPLITS = ("test", "validation", "train", "all")


def iterate_outputs(model, decoded, task, device, preprocessing: dict, batch_size: int = 64, amp: bool = True):
    """Yield (outputs float32, targets, labels) over a DecodedSet in order, without augmentation."""
    import torch

    from rustlab.data.transforms import DecodedDataset, normalize
    from rustlab.device import autocast_context

    if hasattr(model, "eval"):  # an onnxruntime runner (rustlab.inference.engine) has no train mode
        model.eval()
    loader = torch.utils.data.DataLoader(DecodedDataset(decoded, target=task.target), batch_size=batch_size)
    mean, std = preprocessing["mean"], preprocessing["std"]
    with torch.inference_mode():
        for images, targets, labels in loader:
            with autocast_context(device, amp):
                outputs = model(normalize(images.to(device), mean, std))
            yield outputs.float(), targets.to(device), labels


def evaluate_decoded(model, decoded, task, device, rust_index: int, preprocessing: dict, batch_size: int = 64,
                     amp: bool = True, label_smoothing: float = 0.0, calibration: dict | None = None,
                     on_batch=None) -> dict:
    """Metrics of ``model`` on a DecodedSet (no augmentation); ``on_batch(outputs, labels)`` sees
    every batch too (e.g. to keep per-image results)."""
    meter = task.new_meter(rust_index, calibration)
    for outputs, targets, labels in iterate_outputs(model, decoded, task, device, preprocessing, batch_size, amp):
        loss = task.loss(outputs, targets, label_smoothing=label_smoothing)
        meter.update(outputs, targets, labels == rust_index, loss=loss)
        if on_batch is not None:
            on_batch(outputs, labels)
    return meter.compute()


def fit_calibration(model, decoded, task, device, rust_index: int, preprocessing: dict,
                    amp: bool = True) -> dict | None:
    """The task's post-training fit (``Task.calibrate``: a temperature, a rust-area threshold) on
    a split's outputs, usually validation; None where the task fits nothing."""
    import torch

    outs, tgts, rust = [], [], []
    for outputs, targets, labels in iterate_outputs(model, decoded, task, device, preprocessing, amp=amp):
        outs.append(outputs.cpu())
        tgts.append(targets.cpu())
        rust.append(labels == rust_index)
    if not outs:
        return None
    return task.calibrate(torch.cat(outs), torch.cat(tgts), torch.cat(rust))


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


def training_sources(meta: dict) -> list[str]:
    """Every source a checkpoint was trained on (``--data`` and ``--extra-data``), main one first."""
    data = meta.get("data", {})
    return [s["spec"] for s in data.get("sources", [])] or [s for s in [data.get("spec")] if s]


def _recorded_fingerprint(meta: dict, spec: str) -> str | None:
    data = meta.get("data", {})
    for record in data.get("sources", []):
        if record["spec"] == spec:
            return record["fingerprint"]
    return data.get("fingerprint") if spec == data.get("spec") and not data.get("sources") else None


def evaluate_checkpoint(checkpoint, data: str | None = None, split: str = "test", device: str = "auto",
                        batch_size: int = 64, log=None, per_image: bool = False, tta: str | None = None,
                        corrections: str | None = None, engine: str = "auto") -> dict:
    """Metrics of ``checkpoint`` on ``split`` of ``data`` (default: its main training source).

    The split is recomputed with the training run's split seed, so `test` is the same held-out set the
    trainer scored, for the main source and for every extra source alike. ``all`` scores every image
    (for a set the model never saw). ``per_image``: also ``per_image`` rows (key, rust, predicted_rust,
    rust_probability), e.g. for paired comparisons of two models on the same images. ``tta``: a
    segmenter's test-time flips (rustlab.inference.tta); None keeps the checkpoint's. ``corrections``: the
    labels to score against (``--corrections``: a folder, a file, or ``none`` for the publisher's);
    None: the ones the checkpoint was trained with (rustlab.data.corrections). ``engine``: what runs
    the forward pass, as for the Predictor (rustlab.inference.engine); ``engine_note`` in the result
    says why "auto" fell back to PyTorch, where it did.
    """
    from rustlab.device import resolve_device
    from rustlab.inference.engine import choose_runner
    from rustlab.inference.loading import build_model_from_checkpoint

    if split not in EVAL_SPLITS:
        raise RustlabError(f"--split {split}: expected one of {', '.join(EVAL_SPLITS)}")
    dev = resolve_device(device)
    model, meta = build_model_from_checkpoint(checkpoint, tta=tta)
    data = data or meta.get("data", {}).get("spec")
    if not data:
        raise RustlabError("--data is required: the checkpoint does not record its training data")
    task, source, decoded = checkpoint_split(meta, data, split, corrections)
    # the Predictor's engine: onnxruntime on the cached export, or PyTorch with its BatchNorms folded
    model, note = choose_runner(meta["path"], model.to(dev), meta, dev, engine, photos=len(decoded))
    rows = []

    def keep(outputs, labels):
        for result, label in zip(task.interpret(outputs, meta), labels.tolist()):
            rows.append({"key": decoded.keys[len(rows)], "rust": label == meta["rust_index"],
                         "predicted_rust": bool(result["is_rust"]),
                         "rust_probability": float(result["rust_probability"])})

    metrics = evaluate_decoded(model, decoded, task, dev, meta["rust_index"], meta["preprocessing"],
                               batch_size=batch_size, calibration=meta.get("calibration"),
                               on_batch=keep if per_image else None)
    if per_image:
        metrics["per_image"] = rows
    return {
        "checkpoint": meta["path"],
        "model": meta["model"],
        "task": meta["task"],
        "data": data,
        "split": split,
        "tta": meta["tta"],
        "engine": getattr(model, "engine", "pytorch"),
        "engine_note": note,
        "corrections": source.corrections,
        "same_data_as_training": source.fingerprint() == _recorded_fingerprint(meta, data),
        "skipped": [{"file": k, "reason": r} for k, r in decoded.skipped],
        **metrics,
    }


def checkpoint_split(meta: dict, data: str, split: str, corrections: str | None = None):
    """(task, source, DecodedSet) of ``split`` of ``data`` as the checkpoint's training run cut it:
    its split seed, its negatives where ``data`` is its main source, its corrections unless
    ``corrections`` names others, decoded at its input size and labelled with its classes. The
    task is the checkpoint's, as it scores this source (a segmenter scores a source without masks
    by its image-level call)."""
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.registry import get_task

    train_args = meta.get("train_args", {})
    recorded = train_args.get("corrections")  # a path as the run saw it: it may not be here
    if corrections is None and recorded:
        missing = recorded.lower() != "none" and not Path(recorded).expanduser().exists()
        if missing and data in training_sources(meta):
            raise RustlabError(f"the checkpoint was trained with --corrections {recorded}, which is not here: "
                               "give --corrections PATH (or --corrections none for the publisher's labels)")
        # a source it was not trained on: its own corrections (beside it), not the training's
        corrections = None if missing else recorded
    source = load_source(data, negatives=train_args.get("negatives") if data == meta["data"]["spec"] else None,
                         corrections=corrections)
    try:
        task = get_task(meta["task"]).for_source(source.has_masks)
    except RustlabError as exc:
        raise RustlabError(f"--data {data}: {exc}") from None
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
    return task, source, decoded
