"""Side-by-side pictures (truth | prediction) of held-out test images, for experiments/unet/.

Picks the rust test images at the 90th, 50th and 10th percentile of per-image IoU and the test
negative with the largest false rust area, so the pictures show the spread, not the best cases.
The photos are third-party (corrosion-seg, CC BY 4.0): only 4 small derived images are kept.
Usage: python experiments/unet/overlays.py CHECKPOINT OUT_DIR [SIDE_PX]
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rustlab.checkpoint import read_metadata
from rustlab.data.images import load_mask, open_rgb
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits
from rustlab.inference.overlay import overlay
from rustlab.inference.predictor import Predictor

checkpoint, out = sys.argv[1], Path(sys.argv[2])
side = int(sys.argv[3]) if len(sys.argv) > 3 else 192
meta = read_metadata(checkpoint)
args = meta["train_args"]
source = load_source(args["data"], negatives=args["negatives"], needs_masks=True)
test = assign_splits(source, seed=args["seed"])["test"]  # the held-out scenes the trainer scored
predictor = Predictor(checkpoint, device="cpu")
size = predictor.image_size

rows = []
for ex, pred in zip(test, predictor.predict_many([ex.image for ex in test])):
    truth = load_mask(ex.mask, size).astype(bool) if ex.mask else np.zeros((size, size), bool)
    called = pred.mask >= 0.5
    union = (truth | called).sum()
    rows.append((ex, pred, truth, (truth & called).sum() / union if union else 1.0))

rust = sorted((r for r in rows if r[2].any()), key=lambda r: r[3])
negatives = sorted((r for r in rows if not r[2].any()), key=lambda r: r[1].rust_area)
picks = [(f"p{q}", rust[min(len(rust) - 1, int(q / 100 * len(rust)))]) for q in (90, 50, 10)]
picks.append(("worst-negative", negatives[-1]))

out.mkdir(parents=True, exist_ok=True)
for tag, (ex, pred, truth, iou) in picks:
    photo = open_rgb(ex.image).resize((side, side), Image.BILINEAR)
    panel = Image.new("RGB", (2 * side + 4, side + 16), "white")
    panel.paste(overlay(photo, truth.astype(np.float32)), (0, 16))
    panel.paste(overlay(photo, pred.mask), (side + 4, 16))
    draw = ImageDraw.Draw(panel)
    draw.text((2, 2), "ground truth", fill="black")
    draw.text((side + 6, 2), f"predicted: {pred.label} {pred.confidence:.2f}, area {100 * pred.rust_area:.1f}%,"
              f" IoU {iou:.2f}", fill="black")
    path = out / f"{tag}.png"
    panel.save(path, optimize=True)
    print(f"{path}  {Path(ex.key).name}  IoU {iou:.3f}  area {100 * pred.rust_area:.1f}%  {pred.label}")
