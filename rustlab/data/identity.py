"""What identifies a file and an example, without reading the pixels.

A source's fingerprint (recorded in checkpoints) and the decode cache's key are both built from
``example_identity``: a file that changes (size, mtime, or bytes of an in-memory cell) changes
both, so a stale cache is never used and a checkpoint can tell its data has moved on.
"""

from __future__ import annotations

import hashlib
import os


def file_identity(obj) -> str:
    """A path (size:mtime), a ``datasets`` cell (hash of its bytes, else its path), or ``-`` for None."""
    if obj is None:
        return "-"
    if isinstance(obj, dict):
        if obj.get("bytes"):
            return hashlib.sha1(obj["bytes"]).hexdigest()[:12]
        obj = obj.get("path")
    try:
        st = os.stat(obj)
        return f"{st.st_size}:{int(st.st_mtime)}"
    except (OSError, TypeError):
        return str(obj)


def example_identity(ex) -> str:
    """One line per example: its key, label, and the identity of its image and mask files."""
    return f"{ex.key}|{ex.label}|{file_identity(ex.image)}|{file_identity(ex.mask)}"
