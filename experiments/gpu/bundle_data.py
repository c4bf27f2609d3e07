"""Copy ../shared/data into a folder small enough to travel to a lent GPU machine (the device
tool carries at most 64 MiB): every photo re-encoded as JPEG (quality 85) with its longest side
at most MAX_SIDE px, masks resized with NEAREST, folder layout, stems and manifests kept. The
recipes train at 160-224 px, so the models see nearly the same pixels as from the originals;
results made from this bundle say so.

Usage (repo root): python experiments/gpu/bundle_data.py ../shared/data .gpu_data
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

MAX_SIDE = 224
SETS = ("corrosion-cls", "metal-cls", "corrosion-seg", "pipe-seg")


def shrink(src: Path, dst: Path, mask: bool) -> None:
    img = Image.open(src)
    img.load()
    scale = MAX_SIDE / max(img.size)
    if scale < 1:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.NEAREST if mask else Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mask:
        img.save(dst.with_suffix(".png"))
    else:
        img.convert("RGB").save(dst.with_suffix(".jpg"), quality=85)


def main(src_root: str, dst_root: str) -> None:
    src_root, dst_root = Path(src_root), Path(dst_root)
    for name in SETS:
        src, dst = src_root / name, dst_root / name
        for f in src.rglob("*"):
            rel = f.relative_to(src)
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                shrink(f, dst / rel, mask=rel.parts[0] == "masks")
            elif f.is_file():
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dst / rel)


if __name__ == "__main__":
    main(*sys.argv[1:3])
