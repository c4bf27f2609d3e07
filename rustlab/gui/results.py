"""The session's results: one row per dropped file, plain data (no Tk), exported to CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rustlab.inference.grade import grades

QUEUED, DONE, ERROR, CANCELLED = "queued", "done", "error", "cancelled"

CSV_COLUMNS = ("file", "status", "label", "is_rust", "confidence", "rust_probability", "rust_area",
               "astm_d610", "iso_4628_3", "seconds", "width", "height", "model", "checkpoint", "error")


@dataclass
class ResultRow:
    id: int
    source: str
    status: str = QUEUED
    label: str = ""
    is_rust: bool | None = None
    confidence: float | None = None  # probability of ``label``
    rust_probability: float | None = None
    rust_area: float | None = None  # segmentation: fraction of the image called rust
    seconds: float | None = None  # decode + predict, as the user waited for it
    image_size: tuple | None = None  # (width, height) as decoded
    model: str = ""
    checkpoint: str = ""
    error: str = ""
    unreadable: bool = True  # an error row: the file could not be read (else prediction itself failed)
    # pictures for the window (PIL images / float arrays); never exported
    thumbnail: Any = field(default=None, repr=False)
    preview: Any = field(default=None, repr=False)  # JPEG bytes (render.pack) or a PIL image
    heat: Any = field(default=None, repr=False)  # Grad-CAM, model input size, [0, 1]
    mask: Any = field(default=None, repr=False)  # segmentation rust probability, model input size
    mask_threshold: float = 0.5  # the pixel threshold the checkpoint's rust area was computed with

    @property
    def error_title(self) -> str:
        return "cannot read" if self.unreadable else "failed"

    @property
    def name(self) -> str:
        return Path(self.source).name or self.source

    def csv_row(self) -> dict:
        w, h = self.image_size or (None, None)
        return {
            "file": self.source, "status": self.status, "label": self.label,
            "is_rust": "" if self.is_rust is None else int(self.is_rust),
            "confidence": _num(self.confidence), "rust_probability": _num(self.rust_probability),
            "rust_area": _num(self.rust_area), **{k: "" if v is None else v for k, v in grades(self.rust_area).items()},
            "seconds": _num(self.seconds, 4),
            "width": w or "", "height": h or "", "model": self.model, "checkpoint": self.checkpoint,
            "error": self.error,
        }


def _num(value, digits: int = 6):
    return "" if value is None else round(float(value), digits)


class Session:
    """Every row of this window's life, in drop order; finished rows replace their placeholders."""

    def __init__(self):
        self.rows: dict[int, ResultRow] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: ResultRow) -> None:
        self.rows[row.id] = row

    def update(self, row: ResultRow) -> ResultRow | None:
        """Store a finished row; ignored for ids the session no longer has (cleared meanwhile)."""
        if row.id not in self.rows:
            return None
        self.rows[row.id] = row
        return row

    def cancel_pending(self) -> list[int]:
        ids = [r.id for r in self.rows.values() if r.status == QUEUED]
        for i in ids:
            self.rows[i].status = CANCELLED
        return ids

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows.values())

    def finished(self) -> list[ResultRow]:
        return [r for r in self.rows.values() if r.status in (DONE, ERROR)]

    def clear(self) -> None:
        self.rows.clear()

    def to_csv(self, path) -> int:
        """Write finished and failed rows (queued ones are not results yet); returns the count.
        UTF-8 with a BOM, so spreadsheet programs read non-ASCII file names correctly."""
        rows = self.finished()
        with open(path, "w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(r.csv_row() for r in rows)
        return len(rows)


def format_label(label: str) -> str:
    """Class names as people read them: ``no_rust`` -> ``no rust``."""
    return label.replace("_", " ")


def format_percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


def format_confidence(value: float | None) -> str:
    """Like format_percent, but never rounds up to a certainty the model did not give."""
    if value is not None and 0.9995 <= value < 1.0:
        return "> 99.9 %"
    return format_percent(value)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{1000 * seconds:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
