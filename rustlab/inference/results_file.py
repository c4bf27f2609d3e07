"""The results file of `rustlab predict --results FILE.csv|FILE.jsonl`: one row per image, written
and flushed as each result arrives, so a run killed after 9,000 of 20,000 photos keeps 9,000 rows,
and `--resume` continues it (skipping every file that already has a row, error rows included:
an unreadable file stays unreadable).

A row is either a prediction or an error (``error`` filled, the rest empty). Torch-free.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from rustlab.errors import RustlabError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# CSV columns before the per-class probabilities (prob_<class>) and the mask files
BASE_FIELDS = ["source", "label", "is_rust", "confidence", "rust_probability", "rust_area", "astm_d610", "iso_4628_3",
               "decoded_width", "decoded_height", "seconds", "error"]
FILE_FIELDS = ["mask_png", "overlay_png"]


def prediction_row(result, files: dict | None = None) -> dict:
    """The results-file row of a Prediction (``files``: the mask/overlay paths written for it)."""
    d = result.to_dict()
    size = d.pop("image_size", None) or (None, None)
    # the size the model's input was made from: a JPEG decodes reduced (draft mode), as in --json
    d["decoded_width"], d["decoded_height"] = size
    return {**d, **(files or {})}


def error_row(error) -> dict:
    return {"source": error.path, "error": error.reason}


def source_key(source: str) -> str:
    """How a file is recognised on --resume: its absolute path, so `predict photos/` and
    `predict ./photos` (or a run from another folder) name the same file."""
    return os.path.abspath(source)


class ResultsFile:
    """Append-only rows, flushed per row. ``done`` holds the source keys already in the file."""

    def __init__(self, path, class_names, resume: bool = False, suffix: str | None = None):
        self.path = Path(path)
        self.format = FORMATS.get((suffix or self.path.suffix).lower())  # suffix: of a temporary file's target
        if self.format is None:
            raise RustlabError(f"--results {self.path}: expected a .csv or .jsonl file name")
        self.fields = BASE_FIELDS + [f"prob_{c}" for c in class_names] + FILE_FIELDS
        self.done: set[str] = set()
        self.rows_before = 0
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not resume:
            raise RustlabError(f"--results {self.path}: the file exists; add --resume to continue it "
                               "(files already in it are skipped), or remove it")
        if self.path.is_dir():
            raise RustlabError(f"--results {self.path}: is a folder, not a file")
        if exists:
            self._read_existing()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", newline="")
        except OSError as exc:
            raise RustlabError(f"--results {self.path}: cannot write ({exc.strerror or exc})") from None
        self._csv = None
        if self.format == "csv":
            self._csv = csv.DictWriter(self._fh, self.fields, extrasaction="ignore", lineterminator="\n")
            if not exists:
                self._csv.writeheader()
                self._fh.flush()

    def _read_existing(self) -> None:
        """Rows of an earlier run. A last line without its newline is a row cut off by a kill:
        it is dropped (truncated away) and its file predicted again."""
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):
            with open(self.path, "r+b") as fh:
                fh.truncate(len(complete))
        text = complete.decode("utf-8", errors="replace")
        if self.format == "csv":
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames is None:  # only a cut-off header: start over
                with open(self.path, "r+b") as fh:
                    fh.truncate(0)
                return
            if list(reader.fieldnames) != self.fields:
                raise RustlabError(f"--results {self.path}: its columns are not this model's "
                                   f"({', '.join(reader.fieldnames[:12])}); use another file")
            sources = [row.get("source") for row in reader]
        else:
            sources = []
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    sources.append(json.loads(line)["source"])
                except (ValueError, KeyError, TypeError):
                    raise RustlabError(f"--results {self.path}: line {n} is not a results row; "
                                       "use another file") from None
        self.done = {source_key(s) for s in sources if s}
        self.rows_before = len(sources)

    def write(self, row: dict) -> None:
        if self.format == "csv":
            flat = {k: _cell(v) for k, v in row.items() if k != "probabilities"}
            flat.update({f"prob_{c}": _cell(p) for c, p in (row.get("probabilities") or {}).items()})
            self._csv.writerow(flat)
        else:
            self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()  # in the kernel's hands: a killed process loses no row

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.flush()
        try:
            os.fsync(self._fh.fileno())
        except OSError:
            pass  # a pipe or a file system without fsync: flushed is all we can do
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_rows(path) -> list[dict]:
    """The complete rows of a results file (CSV: flat columns; JSONL: as written); none where it
    does not exist. A last line cut off by a kill is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    raw = path.read_bytes()
    text = raw[: raw.rfind(b"\n") + 1].decode("utf-8", errors="replace")
    if FORMATS.get(path.suffix.lower()) == "csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
