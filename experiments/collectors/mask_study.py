"""Rust-area supervision from the segmentation masks: does it carry over to another collector?

The lever of issue 15 that feature_study.py leaves out. The same frozen ImageNet
EfficientNet-Lite0 (224 px, Lite preprocessing) is read at every cell of its block-4 grid
(stride 16: 14 x 14 cells), with block 5 upsampled onto the same grid (112 + 192 numbers per
cell). A cell classifier (the plugin's closed-form logistic, ``fit_logistic``) learns rust from
the masks of the training collectors' segmentation photos: a cell is rust when at least half of
it is masked and clean when at most 5% is; every cell of a classification ``no_rust`` photo is
clean; classification ``rust`` photos give no cell labels. An image is then summarised by its
cells' rust logits (the largest, the mean of the top 10%, the mean rust probability) and called
by a second logistic fitted on the training photos' image labels: on those 3 summaries alone
("cells only": a mask-supervised detector that cannot see the framing), beside the probe's
pooled features, averaged with the probe, or stacked on the probe's out-of-fold logit.

Cells as in feature_study.py: each held-out collector's photos are all scored, the model fitted
on the other sources' train splits, (source, class) groups weighted equally, L2 0.01; the
held-out collector's masks are never read. The probe row repeats feature_study's recipe row.

Usage (repo root, ~3-4 min on 2 idle cores): .venv/bin/python experiments/collectors/mask_study.py [--out FILE.md]
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from feature_study import SOURCES, pooled, study_args, write_table
from rustlab.bench.collectors_stats import paired_bootstrap

CELL_L2 = 0.01
NEG_CELL_SHARE = 0.25  # share of the clean photos' cells kept for the cell fit (memory, speed)


def extract(root: str, size: int, limit: int = 0) -> dict:
    """(source, split) -> labels, pooled probe features, per-cell features and mask fractions."""
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.data.transforms import normalize
    from rustlab.registry import create_model

    net = create_model("effnet-lite0", weights="package", image_size=size, channels_last=True).eval()
    acts = {}
    for i in (4, 5):
        net.backbone.blocks[i].register_forward_hook(lambda m, inp, out, i=i: acts.__setitem__(i, out))
    table = {}
    for name in SOURCES:
        source = load_source(f"{root}/{name}")
        for split, examples in assign_splits(source, seed=0).items():
            examples = examples[:limit] if limit else examples
            if not examples:
                continue
            start = time.perf_counter()
            decoded = load_decoded(examples, size, with_masks=source.has_masks)
            probe, cells, rust = [], [], []
            with torch.no_grad():
                for i in range(0, len(decoded), 64):
                    net.backbone.forward_features(net._input(normalize(decoded.images[i:i + 64], net.config.mean,
                                                                      net.config.std)))
                    b4, b5 = acts[4], acts[5]
                    probe.append(torch.cat([pooled(b4), pooled(b5)], 1))
                    grid = b4.shape[-1]
                    cells.append(torch.cat([b4, F.interpolate(b5, size=b4.shape[-2:], mode="nearest")], 1)
                                 .flatten(2).transpose(1, 2).half())  # N x cells x 304
                    if decoded.masks is not None:
                        m = decoded.masks[i:i + 64].float()
                        rust.append(F.adaptive_avg_pool2d(m, grid).flatten(1))  # N x cells, masked share
            labels = (decoded.labels == source.rust_index).long()
            table[(name, split)] = {"labels": labels, "probe": torch.cat(probe), "cells": torch.cat(cells),
                                    "rust": torch.cat(rust) if rust else None}
            print(f"{name} {split}: {len(decoded)} photos, {time.perf_counter() - start:.1f} s", flush=True)
    return table


def each_rows(table, names, splits):
    """(source name, its rows) for every (source, split) of ``table`` asked for."""
    for name in names:
        for split in splits:
            if (name, split) in table:
                yield name, table[(name, split)]


def cell_rows(table, names, splits, generator):
    """Cell features, cell labels and their (source, cell label) groups for the cell fit."""
    xs, ys, groups = [], [], []
    for name, rows in each_rows(table, names, splits):
        cells = rows["cells"]
        if rows["rust"] is not None:  # masks: rust >= 50% of the cell, clean <= 5%
            y = torch.full(rows["rust"].shape, -1, dtype=torch.long)
            y[rows["rust"] >= 0.5], y[rows["rust"] <= 0.05] = 1, 0
            keep = y >= 0
            xs.append(cells[keep])
            ys.append(y[keep])
        else:  # a classification source: every cell of a no_rust photo is clean
            clean = cells[rows["labels"] == 0].flatten(0, 1)
            pick = torch.rand(len(clean), generator=generator) < NEG_CELL_SHARE
            xs.append(clean[pick])
            ys.append(torch.zeros(int(pick.sum()), dtype=torch.long))
        groups += [(name, int(v)) for v in ys[-1]]
    return torch.cat(xs).float(), torch.cat(ys), groups


def summaries(cells: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image: the largest cell rust logit, the mean of the top 10%, the mean rust probability
    (the plugin's ``RustCells.summaries``, which effnet-lite0-cells computes the same way)."""
    from rustlab_pretrained.cells import RustCells

    logit = torch.cat([(chunk.float() @ (w[1] - w[0]) + (b[1] - b[0])) for chunk in cells.split(256)])
    return RustCells.summaries(logit)


def image_rows(table, names, splits, w, b, use_probe: bool, use_cells: bool):
    xs, ys, groups = [], [], []
    for name, rows in each_rows(table, names, splits):
        parts = ([rows["probe"]] if use_probe else []) + ([summaries(rows["cells"], w, b)] if use_cells else [])
        xs.append(torch.cat(parts, 1))
        ys.append(rows["labels"])
        groups += [(name, int(y)) for y in rows["labels"]]
    return torch.cat(xs), torch.cat(ys), groups


MODES = {  # row label -> how the image is called
    "probe": "blocks 4 + 5 pooled (the probe)",
    "cells": "cells only (mask-supervised rust cells, 3 summaries)",
    "probe+cells": "probe + cells, one logistic on both",
    "average": "average of the probe's and the cells-only model's rust probabilities",
    "stack": "stacked: the probe's out-of-fold logit (5 folds) + the 3 cell summaries",
}
FOLDS = 5


def fitted_logit(x, y, groups, l2, xt):
    """Rust-minus-clean logit on ``xt`` of the closed-form head fitted on (x, y)."""
    from rustlab.data.sampling import group_weights
    from rustlab_pretrained.probe import fit_logistic

    w, b = fit_logistic(x, y, 2, l2, group_weights(groups))
    return xt @ (w[1] - w[0]) + (b[1] - b[0])


def out_of_fold_logit(x, y, groups, l2):
    """Each training photo's probe logit from a head fitted without its fold: what the head says
    about a photo it did not see, so that a second stage does not learn to trust an overfitted score."""
    fold = torch.randperm(len(y), generator=torch.Generator().manual_seed(0)) % FOLDS
    out = torch.empty(len(y))
    for k in range(FOLDS):
        held = fold == k
        out[held] = fitted_logit(x[~held], y[~held], [g for g, h in zip(groups, held) if not h], l2, x[held])
    return out


def correct(table, train_names, test_name, mode: str, l2: float) -> torch.Tensor:
    """1/0 per photo of the held-out source: called right or not."""
    from rustlab.data.sampling import group_weights
    from rustlab_pretrained.probe import fit_logistic

    w = b = None
    if mode != "probe":
        x, y, groups = cell_rows(table, train_names, ("train",), torch.Generator().manual_seed(0))
        w, b = fit_logistic(x, y, 2, CELL_L2, group_weights(groups))
    test_splits = ("train", "validation", "test")
    if mode in ("probe", "cells", "probe+cells"):
        use_probe, use_cells = mode != "cells", mode != "probe"
        x, y, groups = image_rows(table, train_names, ("train",), w, b, use_probe, use_cells)
        xt, yt, _ = image_rows(table, [test_name], test_splits, w, b, use_probe, use_cells)
        return ((fitted_logit(x, y, groups, l2, xt) > 0).long() == yt).float()
    xp, y, groups = image_rows(table, train_names, ("train",), w, b, True, False)
    xc, _, _ = image_rows(table, train_names, ("train",), w, b, False, True)
    xpt, yt, _ = image_rows(table, [test_name], test_splits, w, b, True, False)
    xct, _, _ = image_rows(table, [test_name], test_splits, w, b, False, True)
    probe_t = fitted_logit(xp, y, groups, l2, xpt)
    if mode == "average":
        p = (torch.sigmoid(probe_t) + torch.sigmoid(fitted_logit(xc, y, groups, l2, xct))) / 2
        return ((p > 0.5).long() == yt).float()
    stacked = torch.cat([out_of_fold_logit(xp, y, groups, l2)[:, None], xc], 1)
    logit = fitted_logit(stacked, y, groups, l2, torch.cat([probe_t[:, None], xct], 1))
    return ((logit > 0).long() == yt).float()


def main() -> None:
    args = study_args(__doc__, lambda parser: parser.add_argument(
        "--limit", type=int, default=0, help="photos per source and split (a quick check)"))
    table = extract(args.data, args.size, args.limit)
    lines = ["| image call from | " + " | ".join(f"held-out {s} (all)" for s in SOURCES) + " |",
             "|" + "---|" * (len(SOURCES) + 1)]
    probe = {}
    for mode, label in MODES.items():
        start, cells = time.perf_counter(), []
        for s in SOURCES:
            right = correct(table, [o for o in SOURCES if o != s], s, mode, args.l2)
            probe.setdefault(s, right)
            text = f"{float(right.mean()):.3f}"
            if mode != "probe":  # the gap to the probe over the same photos, paired bootstrap 95%
                gap = paired_bootstrap(dict(enumerate(right.tolist())), dict(enumerate(probe[s].tolist())))
                text += f" ({100 * gap['gap']:+.1f} [{100 * gap['low']:+.1f}, {100 * gap['high']:+.1f}])"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], f"({time.perf_counter() - start:.0f} s)", flush=True)
    lines += ["", "In brackets: the gap to the probe's row in points over the same photos, with its paired "
              "bootstrap 95% interval (2000 resamples)."]
    write_table("mask_study.py", args, lines)


if __name__ == "__main__":
    main()
