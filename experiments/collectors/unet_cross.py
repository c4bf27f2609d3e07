"""Tables of the cross-collector U-Net runs (unet_cross.sh): rust IoU on each segmentation
collector's test split by what the U-Net was trained on, mean and range over seeds.

    .venv/bin/python experiments/collectors/unet_cross.py [--runs runs/unet_cross] [--out experiments/collectors/unet_cross]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

TRAINED = {"corrosion-seg": "corrosion-seg", "pipe-seg": "pipe-seg", "both": "both, shuffled",
           "both-balanced": "both, `--balance sources`"}
HELD = ("corrosion-seg", "pipe-seg")
# Rows whose seconds were measured on a busy machine (results.md says how): marked, never compared.
TIMING_NOTES = {"corrosion-seg_px256": "seed 0 contended; seeds 1-2 on idle cores: 650, 592", "corrosion-seg_px192-labelled": "CPU steal",
                "corrosion-seg_px192-labelled-per-image-loss": "CPU steal",
                "pipe-seg_px192-labelled": "seeds 0 and 2 shared the cores with a one-minute script",
                "corrosion-seg_px192-lite2": "seed 0 shared the cores with a two-minute script",
                "corrosion-seg_px256-e12": "seed 0's first epoch shared the cores with tests and an evaluation",
                "pipe-seg_px192-ema": "seed 0 shared the cores with a two-minute test run, seed 1 with a half-minute one",
                "both_px192-ema": "seed 1 shared the cores with the test suite",
                "corrosion-seg_px192-ema-e12": "seed 0's second epoch shared the cores with a one-minute test run",
                "both_px192-ema-e12": "seed 0 shared the cores with three sub-minute test runs at nice 10"}


def read(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else [data]


def scored(run: Path, base: str, tta: str) -> list[dict] | None:
    """``base``.json's results if that evaluation ran with ``tta`` (runs from before flips record
    none), else ``base``_``tta``.json's (unet_flips.sh), else None."""
    main = read(run / f"{base}.json")
    if main[0].get("tta", "none") == tta:
        return main
    other = run / f"{base}_{tta}.json"
    return read(other) if other.is_file() else None


def collect(runs: Path) -> dict:
    """train name -> list of per-seed dicts of the figures in the table."""
    out = defaultdict(list)
    for run in sorted(runs.iterdir()):
        match = re.fullmatch(r"(.+)_s(\d+)", run.name)
        if not match or not (run / "eval_on_pipe-seg.json").is_file():
            continue
        row = {"seed": int(match.group(2))}
        # plain figures (no flips) and flipped ones, whichever the run's own evaluations hold
        for prefix, tta in (("", "none"), ("flips ", "hvflip")):
            tests = [scored(run, f"eval_on_{held}", tta) for held in HELD]
            validation = scored(run, "eval_seg_validation", tta)
            if validation is None or None in tests:
                continue
            for held, (result,) in zip(HELD, tests):
                row[f"{prefix}iou {held}"], row[f"n {held}"] = result["iou"], result["n"]
            # every training source's validation split that has masks (a labelled-only source has no IoU)
            validation = [r for r in validation if "iou" in r]
            row[f"{prefix}validation iou"] = sum(r["iou"] for r in validation) / len(validation)
        # the call as the run's checkpoint makes it (its area threshold was fitted with its own flips)
        row["cls call"] = read(run / "eval_cls_test.json")[0]["accuracy"]
        labelled = run / "eval_labelled_validation.json"  # runs from before it was scored lack it
        if labelled.is_file():
            row["labelled validation call"] = read(labelled)[0]["accuracy"]
        row["train s"] = int((run / "wall.txt").read_text().split()[1])
        out[match.group(1)].append(row)
    return out


def cell(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows if key in r]
    if len(values) < len(rows):
        return "-"
    mean = sum(values) / len(values)
    fmt = "{:.0f}" if key == "train s" else "{:.3f}"
    spread = f" ({fmt.format(min(values))}-{fmt.format(max(values))})" if len(values) > 1 else ""
    return fmt.format(mean) + spread


def label_of(name: str) -> str:
    train, _, tag = name.partition("_")
    return TRAINED.get(train, train) + (f", {tag}" if tag else "")


def flips_table(results: dict) -> str:
    """The runs scored again with test-time flips (rustlab.inference.tta, hvflip), plain beside flipped."""
    lines = ["| trained on | seeds | validation rust IoU, plain / flips | corrosion-seg test, plain / flips | "
             "pipe-seg test, plain / flips |", "|---|---|---|---|---|"]
    for name, rows in results.items():
        if rows and all("flips validation iou" in r for r in rows):
            lines.append(f"| {label_of(name)} | {len(rows)} | " + " | ".join(
                f"{cell(rows, plain)} / **{cell(rows, 'flips ' + plain)}**"
                for plain in ("validation iou", "iou corrosion-seg", "iou pipe-seg")) + " |")
    return "\n".join(lines) + "\n"


def table(results: dict) -> str:
    lines = ["| trained on | seeds | rust IoU, corrosion-seg test | rust IoU, pipe-seg test | "
             "validation rust IoU (mean over its sources) | image call, labelled validation photos | "
             "image call, corrosion-cls test | train s |",
             "|---|---|---|---|---|---|---|---|"]
    def order(name):  # the recipe's rows first, then each lever's (unet_cross.sh TAG=...), in TRAINED order
        train, _, tag = name.partition("_")
        return tag, list(TRAINED).index(train) if train in TRAINED else len(TRAINED), name

    for name in sorted(results, key=order):
        rows = results.get(name)
        if rows:
            label = label_of(name)
            seconds = cell(rows, "train s") + (f" ({TIMING_NOTES[name]})" if name in TIMING_NOTES else "")
            lines.append(f"| {label} | {len(rows)} | " + " | ".join(
                cell(rows, k) for k in ("iou corrosion-seg", "iou pipe-seg", "validation iou", "labelled validation call",
                                        "cls call")) + f" | {seconds} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/unet_cross")
    parser.add_argument("--out", default="experiments/collectors/unet_cross")
    args = parser.parse_args()
    results = collect(Path(args.runs))
    text = table(results) + "\nWith test-time flips (`rustlab evaluate --tta hvflip`, experiments/collectors/unet_flips.sh):\n\n" \
        + flips_table(results)
    Path(args.out + ".json").write_text(json.dumps(results, indent=2) + "\n")
    Path(args.out + ".md").write_text("<!-- .venv/bin/python experiments/collectors/unet_cross.py, over the runs of "
                                      "unet_cross.sh (commands: results.md) -->\n" + text)
    print(text)


if __name__ == "__main__":
    main()
