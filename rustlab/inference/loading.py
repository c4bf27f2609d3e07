"""A checkpoint loaded for inference: the core's validated model, wrapped in its test-time flips."""

from __future__ import annotations

from rustlab.checkpoint import restore_model
from rustlab.config import check_mode
from rustlab.inference.tta import with_test_time_flips
from rustlab.registry import get_task


def build_model_from_checkpoint(path, tta: str | None = None):
    """(model with weights loaded, in eval mode; metadata). Validates plugin, config and shapes.

    A per-pixel model comes wrapped in its test-time flips (rustlab.inference.tta): the checkpoint's
    ``tta`` unless ``tta`` names another mode; ``meta["tta"]`` says which was used."""
    model, meta = restore_model(path)
    meta["tta"] = check_mode(tta or meta["tta"], get_task(meta["task"]).dense_output)  # restore_model checked the task
    return with_test_time_flips(model, meta["tta"]).eval(), meta
