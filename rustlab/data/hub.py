"""`--data owner/name`: a dataset on the Hugging Face hub (or already in the local `datasets` cache).

Offline, `datasets` would retry for ~20 s before failing; a bounded probe decides first, so an
unreachable hub costs at most a few seconds and one line naming the local alternatives.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

from rustlab.data.tables import datasets_module, from_datasets
from rustlab.errors import DataError

DEFAULT_HUB_DATASET = "BinKhoaLe1812/Corrosion_Rust"
ALTERNATIVES = "a local folder (rust/ and no_rust/ subfolders), a .parquet file, or 'builtin'"


def looks_like_hub_id(spec: str) -> bool:
    """``owner/name`` that is not an existing path nor a file name: anything else is meant as a path."""
    if Path(spec).expanduser().exists():
        return False
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", spec)) and Path(spec).suffix.lower() not in (
        ".parquet", ".csv", ".jpg", ".jpeg", ".png")


def hub_reachable(timeout: float = 3.0) -> bool:
    """A bounded connectivity probe: offline, `datasets` would retry for ~20 s before failing."""
    result = []

    def probe():
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)  # DNS lookups ignore the socket timeout; don't wait for them
    return bool(result)


def read_hub(spec: str):
    """The Source of hub dataset ``spec`` (``owner/name``)."""
    return from_datasets(_load_hub(spec), spec, kind="hub")


def _load_hub(repo_id: str):
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or not hub_reachable()
    ds = datasets_module()
    if offline:
        # Only a dataset already in the local cache can load now; fail fast otherwise.
        import huggingface_hub.constants as hub_constants

        ds.config.HF_HUB_OFFLINE = True
        hub_constants.HF_HUB_OFFLINE = True
    try:
        return ds.load_dataset(repo_id)
    except Exception as exc:
        if offline:
            raise DataError(f"cannot reach the Hugging Face hub to load {repo_id!r} and it is not cached; "
                            f"use {ALTERNATIVES}") from None
        raise DataError(f"cannot load hub dataset {repo_id!r}: {str(exc).splitlines()[0]}; "
                        f"alternatives: {ALTERNATIVES}") from None
