"""`--data builtin`: the synthetic offline set (see synthetic.py), written once as parquet.

The parquet has the hub schema (``image``, ``label`` ClassLabel) plus ``mask``, so it is read
by the same code path as any hub or parquet source. ``builtin:N`` asks for N images.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from rustlab.data.locations import cache_dir
from rustlab.errors import DataError

DEFAULT_COUNT = 600
IMAGE_SIZE = 128
SEED = 1812
VERSION = 1  # bump when synthetic.py changes what it draws


def is_builtin_spec(spec: str) -> bool:
    return spec == "builtin" or spec.startswith("builtin:")


def parse_spec(spec: str) -> int:
    if spec == "builtin":
        return DEFAULT_COUNT
    try:
        n = int(spec.split(":", 1)[1])
    except ValueError:
        n = 0
    if n < 12:
        raise DataError(f"--data {spec}: expected builtin or builtin:N with N >= 12")
    return n


def builtin_parquet(spec: str = "builtin") -> Path:
    """Path of the cached parquet for ``spec``, generating it on first use."""
    n = parse_spec(spec)
    path = cache_dir() / "builtin" / f"v{VERSION}-n{n}-s{IMAGE_SIZE}-seed{SEED}.parquet"
    if not path.is_file():
        _write(path, n)
    return path


def _png(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _write(path: Path, n: int) -> None:
    import datasets

    from rustlab.data.synthetic import generate

    datasets.disable_progress_bars()

    samples = generate(n, size=IMAGE_SIZE, seed=SEED)
    features = datasets.Features({
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=["no_rust", "rust"]),
        "mask": datasets.Image(),
    })
    table = {
        "image": [{"bytes": _png(img), "path": f"builtin/{i:05d}.png"} for i, (img, _, _) in enumerate(samples)],
        "label": [int(label) for _, _, label in samples],
        "mask": [{"bytes": _png(mask.astype("uint8") * 255), "path": f"builtin/{i:05d}_mask.png"}
                 for i, (_, mask, _) in enumerate(samples)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(tmp))
    os.replace(tmp, path)  # atomic: a concurrent or killed run never sees half a file
