"""Rust cells: a detector learnt from the segmentation masks, stacked on the probe's image call.

The frozen backbone is read at every cell of its shallowest feature block's grid (block 4 of
Lite0: stride 16, 14 x 14 cells at 224 px; deeper blocks upsampled onto it). A linear cell
classifier, fitted in closed form like the probe's head, learns rust from the training photos'
masks: a cell is rust where at least half of it is masked and clean where at most 5% is, and
every cell of a no-rust photo is clean. Rust photos without a mask (classification sources)
give no cell labels. Each photo is then summarised by its cells' rust logits (the largest, the
mean of the top 10%, the mean rust probability) and a last logistic, fitted on the image labels,
calls it from those three numbers and the probe's rust logit.

Why: a cell sees local texture, not the photo's framing, so what it learns carries over to
collectors the model never saw (experiments/collectors/mask_study.md: +5.1 and +2.8 points on
the two held-out classification collectors). The probe's logit fed to the last stage is
out-of-fold while fitting (5 folds): the last stage must learn how far to trust the probe on
photos it did not see, not on the ones its head was fitted to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RUST_CELL, CLEAN_CELL = 0.5, 0.05  # masked share of a cell: at least -> rust, at most -> clean
CLEAN_PHOTO_SHARE = 0.25  # share of a no-rust photo's cells kept for the cell fit (memory, speed)
TOP = 0.10  # share of the cells averaged for the "top 10%" summary
FOLDS = 5
CELL_L2 = 0.01
SUMMARIES = 3


def cell_grid(maps: list[torch.Tensor]) -> torch.Tensor:
    """Blocks' feature maps (shallowest first) as one N x C x h x w grid at the shallowest's size."""
    size = maps[0].shape[-2:]
    return torch.cat([maps[0]] + [F.interpolate(m, size=size, mode="nearest") for m in maps[1:]], dim=1)


class RustCells(nn.Module):
    """The cell classifier and the stacked image call. ``forward(grid, probe_logits)`` -> class logits."""

    def __init__(self, channels: int, num_classes: int = 2):
        super().__init__()
        if num_classes != 2:
            raise ValueError(f"rust cells call rust / no rust: num_classes must be 2, got {num_classes}")
        self.cell = nn.Linear(channels, 1)  # a cell's rust-minus-clean logit
        self.stack = nn.Linear(1 + SUMMARIES, num_classes)  # probe's rust logit + the summaries
        # which class is rust: set by fit, saved with the weights (the checkpoint restores it)
        self.register_buffer("rust_index", torch.tensor(1, dtype=torch.long))

    def cell_logits(self, grid: torch.Tensor) -> torch.Tensor:
        """N x C x h x w -> N x (h*w) rust logits."""
        # a weighted sum over channels, not a matmul of the transposed grid: the ONNX export of the
        # latter on a channels_last grid gave wrong numbers (torch 2.14 dynamo exporter)
        weight = self.cell.weight.to(grid.dtype).view(1, -1, 1, 1)
        return (grid * weight).sum(1).flatten(1) + self.cell.bias.to(grid.dtype)

    @staticmethod
    def summaries(logits: torch.Tensor) -> torch.Tensor:
        """N x cells logits -> N x 3: the largest, the mean of the top 10%, the mean rust probability."""
        k = max(1, int(TOP * logits.shape[1]))
        return torch.stack([logits.max(1).values, logits.topk(k, 1).values.mean(1),
                            torch.sigmoid(logits).mean(1)], dim=1)

    def rust_logit(self, probe_logits: torch.Tensor) -> torch.Tensor:
        """N x 2 class logits -> N rust-minus-other logits."""
        rust = F.one_hot(self.rust_index, 2).to(probe_logits.dtype)
        return probe_logits @ (2 * rust - 1)

    def forward(self, grid: torch.Tensor, probe_logits: torch.Tensor) -> torch.Tensor:
        summary = self.summaries(self.cell_logits(grid).float())
        return self.stack(torch.cat([self.rust_logit(probe_logits.float())[:, None], summary], dim=1))


def cell_labels(masks: torch.Tensor, is_rust: torch.Tensor, grid: tuple, generator: torch.Generator) -> torch.Tensor:
    """N x cells of 1 (rust), 0 (clean), -1 (unknown) from uint8 0/1 masks (N x 1 x S x S).

    A rust photo whose mask is empty has no mask (a classification source): all unknown. A no-rust
    photo's cells are all clean; a random ``CLEAN_PHOTO_SHARE`` of them is kept."""
    share = F.adaptive_avg_pool2d(masks.float(), grid).flatten(1)
    labels = torch.full(share.shape, -1, dtype=torch.long)
    labels[share >= RUST_CELL] = 1
    labels[share <= CLEAN_CELL] = 0
    labels[is_rust & (share.amax(1) == 0)] = -1  # no mask at all: nothing known about its cells
    clean_photo = ~is_rust
    keep = torch.rand(share.shape, generator=generator) < CLEAN_PHOTO_SHARE
    labels[clean_photo] = torch.where(keep[clean_photo], 0, -1)
    return labels


def out_of_fold(fit, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None,
                generator: torch.Generator) -> torch.Tensor:
    """Every row's score from ``fit(x, y, weight) -> scorer`` fitted without that row's fold."""
    fold = torch.randperm(len(y), generator=generator) % FOLDS
    out = torch.empty(len(y))
    for k in range(FOLDS):
        held = fold == k
        score = fit(x[~held], y[~held], None if weight is None else weight[~held])
        out[held] = score(x[held])
    return out


def fit_cells(cells: RustCells, grids: torch.Tensor, grid_size: tuple, probe_x: torch.Tensor, labels: torch.Tensor,
              rust_index: int, masks: torch.Tensor, l2: float, sample_weight: torch.Tensor | None = None,
              sources: list | None = None) -> dict:
    """Fit ``cells`` in closed form (see the module's docstring).

    ``grids``: N x cells x C features of the training photos' cells; ``probe_x``: their pooled
    features (what the probe's head reads); ``labels``: class indices (-1 = unknown, left out);
    ``masks``: uint8 N x 1 x S x S (all zero where a photo has none); ``sample_weight``: the
    images' weights (the trainer's --balance); ``sources``: each photo's source, so that every
    (source, cell class) weighs the same in the cell fit."""
    from rustlab.data.sampling import group_weights
    from rustlab.errors import DataError
    from rustlab_pretrained.probe import fit_logistic

    labels = labels.cpu()
    # the clean cells kept and the folds are drawn from torch's RNG, which the trainer seeds from
    # the run's --seed: seeds give different (equally valid) fits, and a rerun the same one
    generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
    y = cell_labels(masks.cpu(), labels == rust_index, grid_size, generator)
    y[labels < 0] = -1
    known = y >= 0
    if not bool((y == 1).any()) or not bool((y == 0).any()):
        raise DataError("rust cells are learnt from segmentation masks: the training data needs rust photos "
                        "with masks and photos without rust (add a segmentation source, e.g. --extra-data)")
    image_of = torch.arange(len(y))[:, None].expand_as(y)[known]
    cell_y = y[known]
    groups = [(sources[int(i)] if sources is not None else None, int(c)) for i, c in zip(image_of, cell_y)]
    w, b = fit_logistic(grids[known].float(), cell_y, 2, CELL_L2, group_weights(groups))
    cells.cell.weight.copy_((w[1] - w[0])[None].to(cells.cell.weight))
    cells.cell.bias.copy_((b[1] - b[0])[None].to(cells.cell.bias))
    cells.rust_index.fill_(int(rust_index))
    logits = torch.cat([chunk.float() @ (w[1] - w[0]) + (b[1] - b[0]) for chunk in grids.split(256)])
    summary = cells.summaries(logits)
    sign = 2 * F.one_hot(torch.tensor(int(rust_index)), 2).float() - 1

    def probe_scorer(x, yy, weight):
        pw, pb = fit_logistic(x, yy, 2, l2, weight)
        return lambda rows: (rows @ pw.T + pb) @ sign

    stacked = torch.cat([out_of_fold(probe_scorer, probe_x, labels, sample_weight, generator)[:, None], summary], dim=1)
    sw, sb = fit_logistic(stacked, labels, 2, l2, sample_weight)
    cells.stack.weight.copy_(sw.to(cells.stack.weight))
    cells.stack.bias.copy_(sb.to(cells.stack.bias))
    return {"rust_cells": int((cell_y == 1).sum()), "clean_cells": int((cell_y == 0).sum())}
