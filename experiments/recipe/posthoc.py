"""Levers that need no training: test-time augmentation (flips) and averaging checkpoints of
several seeds, scored on every set. rustlab's Predictor serves one checkpoint without TTA, so
this is a measurement, not a shipped feature.

Usage (repo root): python experiments/recipe/posthoc.py CKPT [CKPT ...] [--tta] [--json]
Sets: corrosion-cls validation and test (the publisher's split), corrosion-seg (all corroded:
accuracy = recall) validation and test groups and all photos, every builtin image.
"""

from __future__ import annotations

import argparse
import json

import torch

from rustlab.inference.loading import build_model_from_checkpoint
from rustlab.data.cache import load_decoded
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits
from rustlab.data.transforms import normalize
from rustlab.inference.evaluate import _model_labels
from rustlab.tasks.metrics import binary_metrics

CLS = "../shared/data/corrosion-cls"
SEG = "../shared/data/corrosion-seg"
# seg "validation"/"test": its source groups split with seed 0, as mix_sources.py does; a cls+seg
# run selects on both validation splits and never sees the seg test groups
SETS = [(CLS, "validation"), (SEG, "validation"), (CLS, "test"), (SEG, "test"), (SEG, "all"), ("builtin", "all")]


def rust_probability(models, images: torch.Tensor, tta: bool) -> torch.Tensor:
    views = [lambda x: x, lambda x: x.flip(3), lambda x: x.flip(2)] if tta else [lambda x: x]
    total = torch.zeros(len(images))
    with torch.inference_mode():
        for model, meta in models:
            for i in range(0, len(images), 128):
                batch = normalize(images[i:i + 128])
                for view in views:
                    total[i:i + 128] += model(view(batch)).float().softmax(1)[:, meta["rust_index"]]
    return total / (len(models) * len(views))


def score(checkpoints, tta: bool) -> list[dict]:
    models = [build_model_from_checkpoint(c) for c in checkpoints]
    sizes = {int(m["preprocessing"]["image_size"]) for _, m in models}
    if len(sizes) != 1:
        raise SystemExit("checkpoints must share an input size")
    size, meta = sizes.pop(), models[0][1]
    rows = []
    for data, split in SETS:
        source = load_source(data)
        examples = source.examples if split == "all" else assign_splits(source, seed=0)[split]
        decoded = load_decoded(examples, size)
        labels = _model_labels(decoded.labels, source.class_names, source.rust_index,
                               meta["class_names"], meta["rust_index"])
        prob = rust_probability(models, decoded.images, tta)
        metrics = binary_metrics(prob > 0.5, labels == meta["rust_index"], prob)
        rows.append({"data": data, "split": split, **{k: metrics[k] for k in ("accuracy", "f1", "roc_auc", "n")}})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--tta", action="store_true", help="average over identity, h-flip and v-flip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = score(args.checkpoints, args.tta)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        auc = f"{r['roc_auc']:.4f}" if r["roc_auc"] is not None else "-"
        print(f"{r['data']:<32} {r['split']:<10} acc {r['accuracy']:.4f}  f1 {r['f1']:.4f}  auc {auc}  n {r['n']}")


if __name__ == "__main__":
    main()
