"""Copy ../shared/data into a folder small enough to travel to a lent GPU machine (the device
tool carries at most 64 MiB): every photo re-encoded as JPEG (quality 85) with its longest side
at most MAX_SIDE px, masks resized with NEAREST, folder layout, stems and manifests kept. The
recipes train at 160-224 px, so the models see nearly the same pixels as from the originals;
results made from this bundle say so.

Usage (repo root): python experiments/gpu/bundle_data.py ../shared/data .gpu_data
    [--max-side 256] [--quality 80] [--set corrosion-seg --set negatives=/tmp/rustlab-unet-negatives]
(``--set NAME`` takes SRC/NAME; ``NAME=PATH`` any folder, e.g. the U-Net's negatives; default: the
four shared sets.)
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

MAX_SIDE = 224
SETS = ("corrosion-cls", "metal-cls", "corrosion-seg", "pipe-seg")


def shrink(src: Path, dst: Path, mask: bool, max_side: int = MAX_SIDE, quality: int = 85) -> None:
    img = Image.open(src)
    img.load()
    scale = max_side / max(img.size)
    if scale < 1:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.NEAREST if mask else Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mask:
        img.save(dst.with_suffix(".png"))
    else:
        img.convert("RGB").save(dst.with_suffix(".jpg"), quality=quality)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src_root", type=Path)
    parser.add_argument("dst_root", type=Path)
    parser.add_argument("--max-side", type=int, default=MAX_SIDE)
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--set", dest="sets", action="append", default=None, metavar="NAME[=PATH]")
    args = parser.parse_args()
    for entry in args.sets or SETS:
        name, _, path = entry.partition("=")
        src, dst = (Path(path) if path else args.src_root / name), args.dst_root / name
        for f in src.rglob("*"):  # a folder of links (negatives.py) is read through them
            rel = f.relative_to(src)
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                shrink(f, dst / rel, rel.parts[0] == "masks", args.max_side, args.quality)
            elif f.is_file():
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dst / rel)


if __name__ == "__main__":
    main()
