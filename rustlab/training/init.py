"""`rustlab train --init default|CHECKPOINT`: start from a trained model instead of from scratch.

The run takes the checkpoint's model, its config and its input size, and its weights (a slim
checkpoint's backbone comes from its plugin's starting weights, checked by sha256). Then:

- a model fitted in closed form keeps every fitted part and refits only its final call to
  ``--data``, through its plugin's ``adapt(encoded, labels, rust_index, sample_weight)``
  (site adaptation: rustlab_pretrained.adapt). Seconds, and a few dozen labelled photos suffice;
- a stepped model fine-tunes from those weights for ``--epochs``.
"""

from __future__ import annotations

from pathlib import Path

from rustlab.errors import RustlabError


def init_checkpoint(value: str) -> Path:
    """The checkpoint ``--init`` names: "default" is the packaged default model."""
    from rustlab.checkpoint import read_metadata

    if str(value).strip().lower() == "default":
        from rustlab.inference.default_model import default_checkpoint

        return default_checkpoint()
    return Path(read_metadata(value)["path"])


def apply_init(cfg) -> dict:
    """Set ``cfg``'s model, model config and input size from the ``--init`` checkpoint (``--set``
    values still override its config); returns its metadata."""
    from rustlab.checkpoint import read_metadata

    meta = read_metadata(init_checkpoint(cfg.init))
    cfg.model = meta["model"]
    cfg.model_config = {**meta["model_config"], **(cfg.model_config or {})}
    cfg.image_size = int(meta["preprocessing"]["image_size"])
    return meta


def load_init_weights(model, cfg, class_names: list, closed_form: bool) -> None:
    """``model`` (built for ``cfg``) takes the ``--init`` checkpoint's weights."""
    from rustlab.checkpoint import restore_model

    start, meta = restore_model(init_checkpoint(cfg.init))
    if list(meta["class_names"]) != list(class_names):
        raise RustlabError(f"--init {cfg.init}: its classes are {meta['class_names']}, --data's are "
                           f"{list(class_names)}; they must match")
    if closed_form and not callable(getattr(model, "adapt", None)):
        raise RustlabError(f"--init: {meta['model']} is fitted in closed form from scratch and offers no "
                           "adaptation (adapt); train it without --init")
    model.load_state_dict(start.state_dict())


def adapt_closed_form(model, decoded, task, device, rust_index: int, preprocessing: dict, amp: bool = True,
                      log=None, sample_weight=None) -> dict:
    """The "epoch" of a closed-form model under ``--init``: its final call refitted to the training
    split (``model.adapt``); returns its metrics there."""
    from rustlab.inference.evaluate import evaluate_decoded

    encoded = model.encode(decoded.images.to(device))
    try:
        info = model.adapt(encoded, decoded.labels.to(device), rust_index, sample_weight=sample_weight)
    except ValueError as exc:  # e.g. one class only: the user's photos, the user's fix
        raise RustlabError(f"--init: {exc}") from None
    if log is not None and info:
        log("adapted to the training split: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    return evaluate_decoded(model, decoded, task, device, rust_index, preprocessing, amp=amp)
