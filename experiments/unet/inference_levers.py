"""Inference-time levers for a trained segmenter, no retraining: the pixel threshold and flip
test-time augmentation (the mean of the logits of the photo and its mirror image), scored as
micro rust IoU on the validation and test splits that `rustlab evaluate` recomputes from the
checkpoint (same split seed, same negatives).

Usage (repo root):
    python experiments/unet/inference_levers.py CKPT_DIR [CKPT_DIR ...] [--data ../shared/data/corrosion-seg]
        [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json

import torch

from rustlab.inference.loading import build_model_from_checkpoint
from rustlab.inference.evaluate import checkpoint_split, iterate_outputs
from rustlab.inference.tta import TTA_MODES

THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


class Flipped(torch.nn.Module):
    """The model's logits for the flipped photo, flipped back onto the photo's pixels (one view of
    rustlab.inference.tta.FlipAverage, kept apart so that every mode's mean is made of the same passes)."""

    def __init__(self, model, dims):
        super().__init__()
        self.model, self.dims = model, dims

    def forward(self, x):
        return self.model(x.flip(self.dims)).flip(self.dims) if self.dims else self.model(x)


def view_logits(model, meta, data: str, split: str, device: torch.device) -> tuple[dict, torch.Tensor]:
    """({flip dims: logits} for the photo and every mirror image any mode uses, masks) of one split,
    in order, as float32 on the CPU; the split is decoded once."""
    task, _, decoded = checkpoint_split(meta, data, split)
    views = {}
    for dims in [()] + sorted({d for flips in TTA_MODES.values() for d in flips}):
        outs, masks = [], []
        for outputs, targets, _ in iterate_outputs(Flipped(model, dims), decoded, task, device, meta["preprocessing"]):
            outs.append(outputs.cpu())
            masks.append(targets.cpu())
        views[dims] = torch.cat(outs)
    return views, torch.cat(masks)


def iou_at(logits: torch.Tensor, masks: torch.Tensor, threshold: float) -> float:
    pred = torch.sigmoid(logits) >= threshold
    true = masks == 1
    tp, fp, fn = int((pred & true).sum()), int((pred & ~true).sum()), int((~pred & true).sum())
    return tp / (tp + fp + fn) if tp + fp + fn else 0.0


def levers(checkpoint: str, data: str | None, device: str = "cpu") -> dict:
    model, meta = build_model_from_checkpoint(checkpoint, tta="none")
    device = torch.device(device)
    model.to(device)
    data = data or meta["data"]["spec"]
    torch.manual_seed(0)
    result = {}
    for split in ("validation", "test"):
        views, masks = view_logits(model, meta, data, split, device)
        for mode, flips in TTA_MODES.items():  # the mean logit over the photo and the mode's mirror images
            logits = torch.stack([views[()]] + [views[d] for d in flips]).mean(0)
            result[f"{'plain' if mode == 'none' else mode}/{split}"] = {str(t): iou_at(logits, masks, t)
                                                                         for t in THRESHOLDS}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", default=None, help="default: the checkpoint's main training source")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    everything = {}
    for checkpoint in args.checkpoints:
        everything[checkpoint] = result = levers(checkpoint, args.data, args.device)
        for key, row in result.items():
            print(f"{checkpoint} {key:18s} " + " ".join(f"{t}:{v:.4f}" for t, v in row.items()), flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(everything, f, indent=1)


if __name__ == "__main__":
    main()
