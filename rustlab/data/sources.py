"""``load_source``: the one way a ``--data`` value becomes a Source, through the registered readers.

Where the images come from (the hub, a folder, a parquet file, ``builtin``, or whatever a plugin
adds) is the readers' business (``rustlab.data.readers`` and the ``rustlab_register_sources``
hook); what every source must then satisfy (masks when the task needs them, at least one image,
the extra ``--negatives``) is checked here, once, whoever read it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rustlab.data.folders import add_negatives
from rustlab.data.records import Source
from rustlab.errors import DataError, RustlabError

BUILTIN_PLUGIN = "rustlab"  # the registry's name for readers registered by rustlab itself


def load_source(spec: str | os.PathLike, *, negatives: str | None = None, needs_masks: bool = False,
                corrections: str | None = None) -> Source:
    """Resolve a ``--data`` value to a Source; ``needs_masks``: the task trains on masks (``Task.requires_masks``).

    ``corrections``: ``--corrections`` (a folder of ``<source>.csv``, a file, or ``none``); None:
    the corrections file beside the source, if any (rustlab.data.corrections)."""
    from rustlab.data.corrections import apply_corrections, find_corrections

    spec = str(spec)
    source = _read(spec)
    if negatives:
        add_negatives(source, negatives)
    fixes = find_corrections(spec, corrections)
    if fixes is not None:
        apply_corrections(source, fixes)
    if needs_masks and not source.has_masks:
        raise DataError(f"--data {spec}: this model needs masks (images/ + masks/ folders, "
                        "a 'mask' column, or 'builtin')")
    if not source.examples:
        raise DataError(f"--data {spec}: no images found")
    for example in source.examples:
        example.source = spec
    return source


def source_readers() -> list:
    """The registered readers in the order they are asked: plugins' first, then rustlab's own.

    A plugin's claim is narrow (its own prefix, a folder holding its own index file), while the
    built-in image-folder and hub readers take any folder and any ``owner/name``: asked first,
    they would shadow every plugin."""
    from rustlab.registry import get_registry

    readers = get_registry().source_readers
    return ([r for r in readers if r.source != BUILTIN_PLUGIN]
            + [r for r in readers if r.source == BUILTIN_PLUGIN])


def _read(spec: str) -> Source:
    for reader in source_readers():
        if _call(reader, reader.claims, spec):
            source = _call(reader, reader.read, spec)
            if not isinstance(source, Source):
                raise DataError(f"--data {spec}: source reader {reader.name!r} (from {reader.source}) returned "
                                f"{type(source).__name__}, not a rustlab.data.records.Source")
            return source
    if Path(spec).expanduser().exists():
        raise DataError(f"--data {spec}: expected a folder or a .parquet file")
    raise DataError(f"--data {spec}: no such file or folder")


def _call(reader, fn, spec: str):
    try:
        return fn(spec)
    except RustlabError:
        raise  # already the one-line message meant for the user
    except Exception as exc:  # a reader's bug: one line naming the reader, not a traceback
        first = (str(exc).splitlines() or [""])[0]
        raise DataError(f"--data {spec}: source reader {reader.name!r} (from {reader.source}) failed: "
                        f"{type(exc).__name__}: {first}") from None
