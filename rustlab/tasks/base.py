"""The task contract: everything the trainer, evaluate, both predictors (PyTorch and ONNX), the
CLI's metric table and the data layer ask of a kind of model.

A task is what differs between kinds of models (classification, segmentation, ...): the targets
it trains on, its loss, its metrics, its post-training calibration and how raw outputs become
per-image results. Nothing outside ``rustlab/tasks`` asks which task it holds; it asks the task.
A plugin adds a task with ``rustlab_register_tasks(register)`` and a subclass of ``Task``.

This module and the task classes import no torch at module level: the ONNX predictor uses
``interpret_numpy`` without torch installed. Torch-side helpers are imported inside methods.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from rustlab.errors import DataError

CLASSIFICATION_COLUMNS = {c: c for c in ("accuracy", "precision", "recall", "f1", "roc_auc")}


class Meter(Protocol):
    """Accumulates a split's outputs; ``compute`` gives its metrics (``n``, ``loss``, the monitor, ...)."""

    def update(self, outputs, targets, rust_targets, loss=None) -> None:
        """``outputs``: model outputs (float32); ``targets``: the task's targets (labels or masks);
        ``rust_targets``: bool per image, rust or not; ``loss``: the batch's mean loss, if known."""

    def compute(self) -> dict[str, Any]: ...


class Task:
    """Base class of every task; subclasses set the attributes and implement the abstract methods."""

    name: str = ""
    target: str = "label"  # the column of the data the task trains on: "label" or "mask"
    requires_masks: bool = False  # a source without masks cannot train or score it (the data layer checks)
    # an --extra-data source without masks may join training: its photos teach through their
    # image labels alone (segmentation: rust somewhere in a rust photo, none in a no-rust one)
    learns_from_image_labels: bool = False
    monitor: str = "accuracy"  # validation metric (higher is better) that picks the best checkpoint
    explainable: bool = False  # Grad-CAM heatmaps make sense (image-level logits per class)
    dense_output: bool = False  # outputs are per pixel: ONNX export keeps H and W dynamic

    def model_overrides(self, class_names: list[str]) -> dict:
        """Model config values the data decides (e.g. ``num_classes``)."""
        return {}

    def loss(self, outputs, targets, *, label_smoothing: float = 0.0):
        """Mean loss of a batch (float32 tensor), or None where the targets cannot be scored by it.
        ``label_smoothing`` is an option a task may ignore."""
        raise NotImplementedError

    def new_meter(self, rust_index: int, calibration: dict | None = None) -> Meter:
        raise NotImplementedError

    def calibrate(self, outputs, targets, rust_targets) -> dict | None:
        """A post-training fit on validation outputs (a temperature, a threshold), stored in the
        checkpoint as ``calibration`` and read back by meters and ``interpret``; None: nothing to fit."""
        return None

    def interpret_numpy(self, outputs: np.ndarray, meta: dict) -> list[dict]:
        """Per-image results from a batch of raw outputs: ``label``, ``is_rust``, ``confidence``,
        ``rust_probability``, ``probabilities`` and task extras (``mask``, ``rust_area``)."""
        raise NotImplementedError

    def interpret(self, outputs, meta: dict) -> list[dict]:
        """``interpret_numpy`` of a torch tensor: one implementation for both predictors."""
        return self.interpret_numpy(outputs.detach().float().cpu().numpy(), meta)

    def for_source(self, has_masks: bool) -> "Task":
        """The task that scores a source with (or without) masks; raises where it cannot."""
        if self.requires_masks and not has_masks:
            raise DataError(f"a {self.name} model needs data with masks")
        return self

    def metric_columns(self) -> dict[str, str]:
        """Metric key -> column header of the CLI's table, in order."""
        return dict(CLASSIFICATION_COLUMNS)

    def metric_notes(self, metrics: dict) -> list[str]:
        """Lines printed under the CLI's table to say how to read one row's metrics."""
        return []

    def metric_details(self, metrics: dict) -> list[str]:
        """Lines printed per evaluated set after the table (confusion matrix, calibration error)."""
        return []


def confusion_lines(metrics: dict) -> list[str]:
    """The binary rust / no-rust confusion matrix of ``rustlab.tasks.metrics.binary_metrics``, as text."""
    (tn, fp), (fn, tp) = metrics["confusion"]
    return ["confusion (rows true, columns predicted)", f"{'':>12} {'no_rust':>8} {'rust':>8}",
            f"{'no_rust':>12} {tn:>8} {fp:>8}", f"{'rust':>12} {fn:>8} {tp:>8}"]
