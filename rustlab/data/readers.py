"""The built-in data source readers, registered through the hook any plugin uses.

A reader is ``(name, claims(spec) -> bool, read(spec) -> Source)``: ``load_source`` asks each
registered reader in turn whether a ``--data`` value is its kind and lets the first that claims
it read it. Adding a source is one ``read`` function plus its claim, registered in
``rustlab_register_sources`` (here for the built-in ones, in a plugin for any other).
"""

from __future__ import annotations

from pathlib import Path

from rustlab.data.builtin import builtin_parquet, is_builtin_spec
from rustlab.data.folders import is_segmentation_folder, read_image_folder, read_segmentation_folder
from rustlab.data.hub import looks_like_hub_id, read_hub
from rustlab.data.records import Source
from rustlab.data.tables import from_datasets, read_parquet
from rustlab.hookspecs import hookimpl


def _path(spec: str) -> Path:
    return Path(spec).expanduser()


def _read_builtin(spec: str) -> Source:
    return from_datasets(read_parquet(builtin_parquet(spec)), spec, kind="builtin")


def _is_parquet(spec: str) -> bool:
    return _path(spec).is_file() and _path(spec).suffix == ".parquet"


def _read_parquet(spec: str) -> Source:
    return from_datasets(read_parquet(_path(spec)), spec, kind="parquet")


# Asked in this order: the segmentation layout before the catch-all folder of class subfolders,
# and the hub last, as it takes any ``owner/name`` that is not a path.
BUILTIN_READERS = (
    ("builtin", is_builtin_spec, _read_builtin, "builtin or builtin:N: the synthetic offline set"),
    ("parquet", _is_parquet, _read_parquet, "a .parquet file with the hub schema (image, label and/or mask)"),
    ("segmentation-folder", lambda spec: is_segmentation_folder(_path(spec)),
     lambda spec: read_segmentation_folder(_path(spec), spec), "a folder with images/ and masks/"),
    ("image-folder", lambda spec: _path(spec).is_dir(), lambda spec: read_image_folder(_path(spec), spec),
     "a folder of class subfolders (rust/, no_rust/), optionally under train/ validation/ test/"),
    ("hub", looks_like_hub_id, read_hub, "owner/name: a Hugging Face hub dataset (or its local cache)"),
)


@hookimpl
def rustlab_register_sources(register):
    for name, claims, read, description in BUILTIN_READERS:
        register(name, claims=claims, read=read, description=description)
