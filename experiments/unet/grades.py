"""Rust grades from predicted masks against the grades of the drawn masks (issue 32 item 2).

For each segmentation collector's test split (rustlab's seeded split, split seed 0): the ASTM D610
grade and the ISO 4628-3 degree of the drawn mask's rusted share (full resolution), against those
of (a) a segmenter's predicted rust area, as `rustlab predict` reports it, and (b) the colour
rule's share of rust-coloured pixels (HSV, the rule plugin's defaults: no fitting needed to
grade). Exact agreement and agreement within one grade.

Usage (repo root): python experiments/unet/grades.py CHECKPOINT [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

SOURCES = ("../shared/data/corrosion-seg", "../shared/data/pipe-seg")
ISO_ORDER = ["Ri 0", "Ri 1", "Ri 2", "Ri 3", "Ri 4", "Ri 5"]


def mask_share(mask) -> float:
    from PIL import Image

    image = Image.open(mask["path"] if isinstance(mask, dict) else mask).convert("L")
    return float((np.asarray(image) >= 128).mean())


def colour_share(path) -> float:
    import torch

    from rustlab.data.images import open_rgb
    from rustlab.registry import create_model

    rule = colour_share.rule = getattr(colour_share, "rule", None) or create_model("colour-rule")
    rgb = torch.from_numpy(np.asarray(open_rgb(path), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return float(rule.rust_share(rgb)[0])


def agreement(truth: list, guess: list, order=None) -> dict:
    def rank(g):
        return order.index(g) if order else g

    exact = np.mean([a == b for a, b in zip(truth, guess)])
    within = np.mean([abs(rank(a) - rank(b)) <= 1 for a, b in zip(truth, guess)])
    return {"exact": round(float(exact), 3), "within_one": round(float(within), 3)}


def main() -> None:
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.inference.grade import astm_d610, iso_4628_3
    from rustlab.inference.predictor import Predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    predictor = Predictor(args.checkpoint, device="cpu")
    out = []
    for spec in SOURCES:
        test = assign_splits(load_source(spec), seed=0)["test"]
        paths = [e.image["path"] if isinstance(e.image, dict) else e.image for e in test]
        truth = [mask_share(e.mask) for e in test]
        model = [p.rust_area for p in predictor.predict_many(paths)]
        rule = [colour_share(p) for p in paths]
        row = {"source": spec.rsplit("/", 1)[-1], "photos": len(test),
               "mask_share_mean": round(float(np.mean(truth)), 4)}
        for name, shares in (("model", model), ("colour rule", rule)):
            row[name] = {"astm_d610": agreement([astm_d610(t) for t in truth], [astm_d610(s) for s in shares]),
                         "iso_4628_3": agreement([iso_4628_3(t) for t in truth], [iso_4628_3(s) for s in shares],
                                                 ISO_ORDER),
                         "share_mean": round(float(np.mean(shares)), 4)}
        row["truth_grades"] = {str(g): sum(astm_d610(t) == g for t in truth) for g in range(11)}
        out.append(row)
        print(json.dumps(row), flush=True)
    print("\n| collector, test split (photos) | ASTM D610 exact / within one: model | colour rule | "
          "ISO 4628-3 exact / within one: model | colour rule |")
    print("|---|---|---|---|---|")
    for r in out:
        m, c = r["model"], r["colour rule"]
        print(f"| {r['source']} ({r['photos']}) | {m['astm_d610']['exact']:.3f} / {m['astm_d610']['within_one']:.3f} | "
              f"{c['astm_d610']['exact']:.3f} / {c['astm_d610']['within_one']:.3f} | "
              f"{m['iso_4628_3']['exact']:.3f} / {m['iso_4628_3']['within_one']:.3f} | "
              f"{c['iso_4628_3']['exact']:.3f} / {c['iso_4628_3']['within_one']:.3f} |")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
