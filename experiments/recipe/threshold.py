"""Is 0.5 the wrong rust threshold on corrosion-cls? Pick the threshold that maximises accuracy on
cls validation and read cls test with it; also print the best test accuracy any threshold gives
(an oracle: chosen on test, so an upper bound, never a result).

Usage (repo root): python experiments/recipe/threshold.py CKPT [CKPT ...]
"""

from __future__ import annotations

import sys

import torch

from posthoc import CLS, rust_probability  # same folder: run as a script from the repo root
from rustlab.inference.loading import build_model_from_checkpoint
from rustlab.data.cache import load_decoded
from rustlab.data.sources import load_source
from rustlab.data.splits import assign_splits

THRESHOLDS = torch.linspace(0.05, 0.95, 91)


def accuracies(prob: torch.Tensor, is_rust: torch.Tensor) -> torch.Tensor:
    return torch.stack([((prob > t) == is_rust).float().mean() for t in THRESHOLDS])


def main(checkpoints):
    source = load_source(CLS)
    splits = assign_splits(source, seed=0)
    for checkpoint in checkpoints:
        model, meta = build_model_from_checkpoint(checkpoint)
        size = int(meta["preprocessing"]["image_size"])
        scored = {}
        for split in ("validation", "test"):
            decoded = load_decoded(splits[split], size)
            scored[split] = (rust_probability([(model, meta)], decoded.images, tta=False),
                             decoded.labels == source.rust_index)
        val_acc = accuracies(*scored["validation"])
        test_acc = accuracies(*scored["test"])
        best = int(val_acc.argmax())
        print(f"{checkpoint}: threshold {THRESHOLDS[best]:.2f} (best on validation, acc {val_acc[best]:.3f}) "
              f"-> test acc {test_acc[best]:.3f}; at 0.50: {test_acc[45]:.3f}; best any threshold on test "
              f"(oracle): {test_acc.max():.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
