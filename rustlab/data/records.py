"""What every data source reader returns: a ``Source`` of ``Example`` rows.

Kept apart from the readers (and from ``load_source``) so that readers, splits, mixing and
plugins can all import these types without importing one another.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from rustlab.data.identity import example_identity
from rustlab.errors import DataError

SPLITS = ("train", "validation", "test")
# How publishers name their splits (folder names, hub split names, manifest columns).
SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "test": "test", "testing": "test"}


@dataclass
class Example:
    """One image of a source. ``image``/``mask`` are what the decoder accepts (path or datasets cell)."""

    key: str
    image: object
    label: int | None = None
    mask: object | None = None  # None with has_masks: an image known to hold no rust (empty mask)
    group: str | None = None  # scenes that must not straddle splits
    split: str | None = None  # the split the source itself assigns, if any
    source: str | None = None  # the --data value it came from (set by load_source): balancing by source


@dataclass
class Source:
    spec: str
    class_names: list[str]
    rust_index: int
    examples: list[Example]
    has_masks: bool = False
    kind: str = "folder"
    notes: list[str] = field(default_factory=list)
    # set by rustlab.data.corrections.apply_corrections: the examples as the publisher labelled
    # them (splits are cut on these), key -> corrected Example (None: excluded), and the record
    publisher_examples: list | None = field(default=None, repr=False)
    corrected: dict | None = field(default=None, repr=False)
    corrections: dict | None = None

    def fingerprint(self) -> str:
        """Identity of the data: every example's key, label and file identity, after corrections
        (a relabelled or excluded photo changes it)."""
        h = hashlib.sha1()
        for ex in self.examples:
            h.update(f"{example_identity(ex)}\n".encode())
        return h.hexdigest()[:16]


def rust_class_index(class_names: list[str]) -> int:
    """Which class means rust, decided by name (never by position)."""

    def norm(name):
        return re.sub(r"[^a-z]", "", str(name).lower())

    negative = re.compile(r"^(no|non|not|without|clean|free|healthy|intact|good|normal)")
    hits = [i for i, n in enumerate(class_names)
            if re.search(r"rust|corro", norm(n)) and not negative.match(norm(n))
            and not re.search(r"(free|less)$", norm(n))]
    if len(hits) != 1:
        raise DataError(f"cannot tell which class means rust from class names {class_names}; "
                        "name it 'rust' (and the other e.g. 'no_rust')")
    return hits[0]
