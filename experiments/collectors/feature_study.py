"""Which frozen EfficientNet-Lite0 features carry over to another collector's photos?

The feature study behind ``effnet-lite0-probe`` (issue 15). Every photo of the four shared
sources goes once through the frozen ImageNet network (224 px, the Lite preprocessing); the
mean and standard deviation over the image of each block's output, and timm's own pooled head
features, are kept. Then, for each feature set, the plugin's own closed-form head
(``rustlab_pretrained.probe.fit_logistic``, L2 0.01, every (source, class) group weighted
equally, as ``experiments/all_sources.toml``) is fitted for every leave-one-collector-out cell
and for corrosion-cls alone (train split -> test split). A cell fits on the other sources' train
splits, as the trainer does in a `rustlab bench collectors` cell (their validation splits only
calibrate there), and scores ALL of the held-out source. Three more levers on the probe's features:
the colour rule's rust share as one more feature, one random zoomed-in crop of every training
photo as one more training row, and each ``--balance`` mode as row weights.

Usage (repo root, ~2-3 min on 2 idle cores): .venv/bin/python experiments/collectors/feature_study.py [--out FILE.md]
"""

from __future__ import annotations

import argparse
import time

import torch

SOURCES = ("corrosion-cls", "metal-cls", "corrosion-seg", "pipe-seg")
FEATURE_SETS = {  # name -> (keys, mean only)
    "timm head (conv_head, 1280, average)": (["head"], True),
    "timm head, mean + std": (["head"], False),
    "block 6 (320)": (["b6"], False),
    "block 5 (192)": (["b5"], False),
    "block 4 (112)": (["b4"], False),
    "block 3 (80)": (["b3"], False),
    "blocks 4 + 5 (the probe)": (["b4", "b5"], False),
    "blocks 4 + 5 + 6": (["b4", "b5", "b6"], False),
    "blocks 4 + 5 + the colour rule's log rust share": (["b4", "b5", "share"], False),
}
BALANCES = ("none", "classes", "sources", "sources+classes")  # as `--balance`, for the probe's features


def pooled(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.mean((2, 3)), (x.var((2, 3), unbiased=False) + 1e-6).sqrt()], 1)


class CropEach:
    """A random resized crop (25-70% of the area) of every image of a uint8 batch, back to ``size``:
    framing cut away, textures zoomed in."""

    def __init__(self, size: int):
        from torchvision.transforms import v2

        self.transform = v2.RandomResizedCrop(size, scale=(0.25, 0.7), antialias=True)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.transform(image) for image in images])


def pooled_blocks(net, acts: dict, x: torch.Tensor) -> torch.Tensor:
    """Blocks 4 and 5 pooled, as ``effnet-lite0-probe`` reads them."""
    net.backbone.forward_features(net._input(x))
    return torch.cat([pooled(acts["b4"]), pooled(acts["b5"])], 1)


def extract(root: str, size: int) -> dict:
    """(source, split) -> {"labels": rust 0/1, key: pooled features} for every photo."""
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.data.transforms import normalize
    from rustlab.registry import create_model

    net = create_model("effnet-lite0", weights="package", image_size=size, channels_last=True).eval()
    rule = create_model("colour-rule").eval()
    lite = {"mean": net.config.mean, "std": net.config.std}  # the Lite weights' input scaling
    crop = CropEach(size)
    acts = {}
    for i in range(7):
        net.backbone.blocks[i].register_forward_hook(lambda m, inp, out, i=i: acts.__setitem__(f"b{i}", out))
    table = {}
    for name in SOURCES:
        source = load_source(f"{root}/{name}")
        for split, examples in assign_splits(source, seed=0).items():
            if not examples:
                continue
            decoded, rows, start = load_decoded(examples, size), {}, time.perf_counter()
            with torch.no_grad():
                for i in range(0, len(decoded), 64):
                    x = net._input(normalize(decoded.images[i:i + 64], **lite))
                    head = net.backbone.forward_features(x)
                    for key, value in acts.items():
                        rows.setdefault(key, []).append(pooled(value))
                    rows.setdefault("head", []).append(pooled(head))
            table[(name, split)] = {k: torch.cat(v) for k, v in rows.items()}
            share = torch.cat([rule.rust_share(decoded.images[i:i + 256].float() / 255)
                               for i in range(0, len(decoded), 256)])
            table[(name, split)]["share"] = torch.log(share.float() + 1e-3)[:, None].repeat(1, 2)
            table[(name, split)]["labels"] = (decoded.labels == source.rust_index).long()
            if split != "test":  # the crop lever: one random zoomed-in crop of every training photo
                with torch.no_grad():
                    crops = [pooled_blocks(net, acts, normalize(crop(decoded.images[i:i + 64]), **lite))
                             for i in range(0, len(decoded), 64)]
                table[(name, split)]["crop_b4_b5"] = torch.cat(crops)
            print(f"{name} {split}: {len(decoded)} photos, {time.perf_counter() - start:.1f} s", flush=True)
    return table


def gather(table, names, splits, keys, mean_only, crops: bool = False):
    xs, ys, groups = [], [], []
    for name in names:
        for split in splits:
            rows = table.get((name, split))
            if rows is None:
                continue
            parts = [rows[k][:, : rows[k].shape[1] // 2] if mean_only else rows[k] for k in keys]
            views = [torch.cat(parts, 1)] + ([rows["crop_b4_b5"]] if crops else [])
            for view in views:  # a crop is one more training row with the photo's label
                xs.append(view)
                ys.append(rows["labels"])
                groups += [(name, int(y)) for y in rows["labels"]]
    return torch.cat(xs), torch.cat(ys), groups


def score(table, train_names, train_splits, test_name, test_splits, keys, mean_only, l2,
          balance: str = "sources+classes", crops: bool = False) -> float:
    from rustlab.data.sampling import group_weights
    from rustlab_pretrained.probe import fit_logistic

    x, y, groups = gather(table, train_names, train_splits, keys, mean_only, crops)
    groups = {"none": [0] * len(groups), "classes": [g[1] for g in groups], "sources": [g[0] for g in groups],
              "sources+classes": groups}[balance]
    w, b = fit_logistic(x, y, 2, l2, group_weights(groups))
    xt, yt, _ = gather(table, [test_name], test_splits, keys, mean_only)
    return float(((xt @ w.T + b).argmax(1) == yt).float().mean())


def study_args(doc: str, extra=None) -> argparse.Namespace:
    """The command line of a study on frozen features (this one, mask_study.py); seeds torch."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--l2", type=float, default=0.01)
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    if extra is not None:
        extra(parser)
    torch.manual_seed(0)
    return parser.parse_args()


def write_table(script: str, args, lines: list[str]) -> None:
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"<!-- .venv/bin/python experiments/collectors/{script} --size {args.size} "
                    f"--l2 {args.l2} -->\n" + "\n".join(lines) + "\n")


def main() -> None:
    args = study_args(__doc__)
    table = extract(args.data, args.size)
    header = ("| features | " + " | ".join(f"held-out {s} (all)" for s in SOURCES)
              + " | corrosion-cls test (trained on its train split) |")
    lines = [header, "|" + "---|" * (len(SOURCES) + 2)]
    for label, (keys, mean_only) in FEATURE_SETS.items():
        cells = [score(table, [o for o in SOURCES if o != s], ("train",), s,
                       ("train", "validation", "test"), keys, mean_only, args.l2) for s in SOURCES]
        own = score(table, ["corrosion-cls"], ("train",), "corrosion-cls", ("test",), keys, mean_only, args.l2)
        lines.append(f"| {label} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {own:.3f} |")
        print(lines[-1], flush=True)
    cells = [score(table, [o for o in SOURCES if o != s], ("train",), s,
                   ("train", "validation", "test"), ["b4", "b5"], False, args.l2, crops=True) for s in SOURCES]
    own = score(table, ["corrosion-cls"], ("train",), "corrosion-cls", ("test",), ["b4", "b5"], False, args.l2,
                crops=True)
    lines.append("| blocks 4 + 5, + one random crop (25-70% of the area) of every training photo | "
                 + " | ".join(f"{c:.3f}" for c in cells) + f" | {own:.3f} |")
    print(lines[-1], flush=True)
    lines += ["", "| balance (blocks 4 + 5) | " + header.split("| ", 2)[2], lines[1]]
    for balance in BALANCES:
        cells = [score(table, [o for o in SOURCES if o != s], ("train",), s,
                       ("train", "validation", "test"), ["b4", "b5"], False, args.l2, balance) for s in SOURCES]
        own = score(table, ["corrosion-cls"], ("train",), "corrosion-cls", ("test",), ["b4", "b5"], False, args.l2,
                    balance)
        lines.append(f"| {balance} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {own:.3f} |")
        print(lines[-1], flush=True)
    write_table("feature_study.py", args, lines)


if __name__ == "__main__":
    main()
