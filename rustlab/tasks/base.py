"""The task protocol shared by the trainer, evaluate and the Predictor."""

from __future__ import annotations

from typing import Any, Protocol


class Meter(Protocol):
    def update(self, outputs, targets, rust_targets) -> None: ...

    def compute(self) -> dict[str, Any]: ...


class Task(Protocol):
    name: str
    target: str  # which column of the data the task trains on: "label" or "mask"
    monitor: str  # validation metric (higher is better) that picks the best checkpoint

    def model_overrides(self, class_names: list[str]) -> dict: ...

    def loss(self, outputs, targets): ...

    def new_meter(self, rust_index: int, calibration: dict | None = None) -> Meter: ...

    def interpret(self, outputs, meta: dict) -> list[dict]:
        """Per-image results (label, is_rust, confidence, rust_probability, ...); reads
        ``meta["calibration"]`` where the task fitted one."""
        ...

    # Optional: ``calibrate(outputs, targets, rust_targets) -> dict`` fitted on validation outputs
    # after training and stored in the checkpoint as ``calibration``.
