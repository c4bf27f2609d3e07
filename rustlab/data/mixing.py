"""Training on several sources at once (``--extra-data``): one more collector's photos join ours.

Each extra source is split on its own (its publisher's split, else rustlab's seeded group split,
the one ``rustlab evaluate --data <it>`` recomputes from the checkpoint's seed), so its test
split stays out of training and can be scored as a held-out set of another collector. Its train
and validation images join the main source's, so the validation metric that picks the best epoch
sees every source. Labels are mapped by meaning (rust / not rust), never by position.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from rustlab.data.records import Source
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits
from rustlab.errors import DataError


def source_record(source: Source, splits: dict) -> dict:
    """What a checkpoint keeps of one training source: enough to recompute its held-out split."""
    record = {"spec": source.spec, "fingerprint": source.fingerprint(), "masks": source.has_masks,
              "counts": {split: len(splits.get(split, [])) for split in ("train", "validation", "test")}}
    if source.corrections:
        record["corrections"] = source.corrections
    return record


def add_extra_sources(main: Source, splits: dict, extra_specs, seed: int, needs_masks: bool,
                      corrections: str | None = None) -> tuple[str, list]:
    """Add the train/validation splits of every ``extra_specs`` source to ``splits`` (in place).

    Returns the fingerprint of all the data (main + extras) and a ``source_record`` per extra
    source; notes go to ``main.notes``. ``corrections``: the run's --corrections (load_source)."""
    fingerprint = hashlib.sha1(main.fingerprint().encode())
    records = []
    for spec in extra_specs:
        try:
            extra = load_source(spec, needs_masks=needs_masks, corrections=corrections)
        except DataError as exc:  # its messages name the flag --data; this one came from --extra-data
            raise DataError(str(exc).replace("--data ", "--extra-data ", 1)) from None
        if len(main.class_names) != 2 and list(extra.class_names) != list(main.class_names):
            raise DataError(f"--extra-data {spec}: classes {extra.class_names} do not match {main.class_names}")
        unlabelled = sum(ex.label is None for ex in extra.examples)
        if main.has_masks and not extra.has_masks and unlabelled:
            raise DataError(f"--extra-data {spec}: without masks, its photos teach a segmenter through their "
                            f"rust / no-rust labels, and {unlabelled} have none")
        extra_splits = assign_splits(extra, seed=seed)
        records.append(source_record(extra, extra_splits))
        added = {}
        for split in ("train", "validation"):
            examples = [_relabelled(ex, extra, main) for ex in extra_splits[split]]
            splits[split] = list(splits.get(split, [])) + examples
            added[split] = len(examples)
        held = len(extra_splits.get("test", []))
        main.notes.append(f"extra data {spec}: +{added['train']} train, +{added['validation']} validation; "
                          f"its {held} test images held out")
        main.notes.extend(f"  {note}" for note in extra.notes if note.startswith("corrections "))
        fingerprint.update(f"|{spec}:{extra.fingerprint()}:{seed}".encode())
    return fingerprint.hexdigest()[:16], records


def _relabelled(example, extra: Source, main: Source):
    if example.label is None or list(extra.class_names) == list(main.class_names):
        return example
    is_rust = example.label == extra.rust_index
    label = main.rust_index if is_rust else 1 - main.rust_index
    return replace(example, label=label)
