"""Where rustlab keeps files it can rebuild: the decode-once cache and the generated builtin set.

One place decides it so that every writer agrees (tests point ``RUSTLAB_CACHE`` at a private
folder and nothing may leak into the user's ``~/.cache``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$RUSTLAB_CACHE``, else ``$XDG_CACHE_HOME/rustlab``, else ``~/.cache/rustlab``."""
    root = os.environ.get("RUSTLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rustlab")
    return Path(root)
