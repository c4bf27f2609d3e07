"""Corrections: labels checked by eye, kept as data about a source's files, never written into them.

A corrections file is CSV with a header ``file,label,reason`` (and optionally ``source``):

- ``file``: the photo's path relative to its source folder (``rust/0a1b.jpg``; for a source
  that is not a folder, such as ``builtin``, the name rustlab shows for it, its key);
- ``label``: the class it really is (``rust`` / ``no_rust``: the source's class names), or
  ``exclude`` to leave the photo out of every split (unclear, a duplicate, no steel at all);
- ``reason``: why, in words (kept for the reader; rustlab does not interpret it);
- ``source`` (optional): which source the row is for, by its folder name (``corrosion-cls``),
  so that one file can correct several sources (what ``rustlab audit``'s page downloads).

Where rustlab finds one for a ``--data`` value (``find_corrections``):

1. ``--corrections PATH`` (or ``corrections = PATH`` in a run config): a folder of
   ``<source name>.csv`` files (``data/corrections/`` in this repository), or one file;
2. otherwise a file beside the source: ``<folder>/corrections.csv`` or ``<folder>.corrections.csv``
   (the second for folders one may not write into);
3. ``--corrections none``: the publisher's labels, whatever lies beside the source.

Splits are cut on the publisher's labels first and corrected afterwards (``assign_splits``), so
a correction moves no other photo between splits: a corrected test split is the same photos as
before, less the excluded ones. A row naming a file the source does not have, a label that is not
a class, or a file named twice is an error naming the corrections file and its line.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
from dataclasses import dataclass, replace
from pathlib import Path

from rustlab.errors import DataError

BESIDE_NAMES = ("corrections.csv",)  # inside the source folder
EXCLUDE = "exclude"
NO_CORRECTIONS = "none"  # --corrections none: the publisher's labels


@dataclass(frozen=True)
class Correction:
    file: str
    label: str  # a class name, or EXCLUDE
    reason: str
    line: int  # its line in the corrections file, for messages


@dataclass
class Corrections:
    path: str  # where the rows came from
    rows: dict  # file -> Correction
    sha1: str  # of the whole corrections file

    def record(self, relabelled: int, excluded: int) -> dict:
        """What a checkpoint keeps of the corrections applied to one source."""
        return {"file": self.path, "sha1": self.sha1, "relabelled": relabelled, "excluded": excluded}


def source_name(spec: str) -> str:
    """A source's name in corrections files: its folder's (or file's) name without suffix, or the
    spec itself where it is no path (``builtin:96`` -> ``builtin``, ``owner/name`` -> ``name``)."""
    text = str(spec).rstrip("/")
    if text.startswith("builtin"):
        return "builtin"
    name = Path(text).name
    return name[:-len(".parquet")] if name.endswith(".parquet") else name


@functools.lru_cache(maxsize=64)
def _folder(spec: str) -> Path | None:
    root = Path(spec).expanduser()
    return root.resolve() if root.is_dir() else None


def example_file(key: str, spec: str) -> str:
    """The name a corrections file uses for the example with ``key`` in source ``spec``."""
    root = _folder(str(spec))
    if root is not None:
        try:
            return Path(key).resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return str(key)


def read_corrections(path: Path, name: str) -> Corrections | None:
    """The rows of the corrections file ``path`` that are for source ``name`` (rows without a
    ``source`` are every source's); None: none are."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"--corrections {path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"--corrections {path}: not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))  # quoted fields may hold commas and newlines
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "file" not in header or "label" not in header:
        raise DataError(f"--corrections {path}: expected a CSV header with file,label,reason (got {header or 'nothing'})")
    reader.fieldnames = header
    rows = {}
    for line, row in enumerate(reader, start=2):
        source = (row.get("source") or "").strip()
        if source and source != name:
            continue
        file, label = row.get("file") or "", (row.get("label") or "").strip()  # a name is taken as written
        if not file or not label:
            raise DataError(f"--corrections {path}:{line}: every row needs a file and a label")
        if file in rows:
            raise DataError(f"--corrections {path}:{line}: {file} is corrected twice (also on line {rows[file].line})")
        rows[file] = Correction(file, label, (row.get("reason") or "").strip(), line)
    if not rows:
        return None
    return Corrections(str(path), rows, hashlib.sha1(data).hexdigest())


def find_corrections(spec: str, named: str | None = None) -> Corrections | None:
    """The corrections for ``--data spec`` (see the module's docstring for where they are looked for)."""
    if named is not None and str(named).strip().lower() == NO_CORRECTIONS:
        return None
    name = source_name(spec)
    if named:
        path = Path(str(named)).expanduser()
        if path.is_dir():
            file = path / f"{name}.csv"
            return read_corrections(file, name) if file.is_file() else None
        if not path.is_file():
            raise DataError(f"--corrections {named}: no such file or folder")
        return read_corrections(path, name)
    root = Path(str(spec)).expanduser()
    for candidate in [root / n for n in BESIDE_NAMES] + [root.with_name(root.name + ".corrections.csv")]:
        if root.name and candidate.is_file():
            return read_corrections(candidate, name)
    return None


def apply_corrections(source, corrections: Corrections) -> None:
    """Correct ``source`` in place: its examples become the corrected ones, the publisher's are kept
    in ``source.publisher_examples`` (splits are cut on them), and a note says what changed."""
    by_file = {example_file(ex.key, source.spec): ex for ex in source.examples}
    corrected, relabelled, excluded = {}, 0, 0
    for file, fix in corrections.rows.items():
        example = by_file.get(file)
        if example is None:
            raise DataError(f"--corrections {corrections.path}:{fix.line}: {file} is not a photo of --data "
                            f"{source.spec}")
        if fix.label == EXCLUDE:
            corrected[example.key] = None
            excluded += 1
            continue
        if fix.label not in source.class_names:
            raise DataError(f"--corrections {corrections.path}:{fix.line}: label {fix.label!r} is not one of "
                            f"{source.class_names} or {EXCLUDE!r}")
        label = source.class_names.index(fix.label)
        corrected[example.key] = replace(example, label=label)
        relabelled += example.label != label
    source.publisher_examples = list(source.examples)
    source.corrected = corrected
    source.corrections = corrections.record(relabelled, excluded)
    source.examples = correct(source, source.examples)
    source.notes.append(f"corrections {corrections.path}: {relabelled} relabelled, {excluded} excluded")


def correct(source, examples: list) -> list:
    """``examples`` of ``source`` with its corrections applied (excluded ones left out)."""
    fixes = source.corrected
    if not fixes:
        return list(examples)
    out = []
    for ex in examples:
        fixed = fixes.get(ex.key, ex)
        if fixed is not None:
            out.append(fixed)
    return out
