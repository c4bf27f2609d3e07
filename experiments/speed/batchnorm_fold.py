"""Warm predict with the BatchNorms folded into their convolutions (rustlab.inference.batchnorm_fold) or not,
per model at its recipe's input size, on this CPU: the Predictor's forward (normalise, model)
on one photo and on a batch of 8, the two alternating in rounds (rustlab.bench.speed_predict.
measure_fold). Untrained weights (the same speed as trained ones); ``others_cores`` > 0.25 marks
a contended row.

    .venv/bin/python experiments/speed/batchnorm_fold.py [--models cnn,unet,...] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent
# Each model as its recipe runs it (experiments/*.toml); cnn's reference config has no BatchNorm.
SETUPS = {
    "cnn": {"image_size": 96, "batch_norm": True},
    "unet": {"image_size": 160},
    "effnet-lite0-cells": {"image_size": 288, "weights": "none"},
    "effnet-lite0-probe": {"image_size": 288, "weights": "none"},
    "unet-effnet-lite0": {"image_size": 192, "weights": "none"},
}


def main():
    from rustlab.bench.speed_predict import measure_fold

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SETUPS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=30)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            config = dict(SETUPS.get(name, {}))
            for batch in (1, 8):
                folder = Path(tmp) / f"{name}-{batch}"
                folder.mkdir()
                row = measure_fold(name, folder, config, n=args.n if batch == 1 else max(5, args.n // 4),
                                   rounds=args.rounds, batch_size=batch)
                print(row, flush=True)
                rows.append(row)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (OUT / "batchnorm_fold.json").write_text(json.dumps({"measured": stamp, "rows": rows}, indent=1) + "\n")
    lines = [f"# BatchNorm folded into the convolutions at predict time ({stamp}, 2-core CPU, fp32)", "",
             "`.venv/bin/python experiments/speed/batchnorm_fold.py`: the Predictor's forward, median ms of the "
             "best of 3 alternating rounds; others' cores > 0.25 = contended.", "",
             "| model | input px | batch | BatchNorms folded | unfolded ms | folded ms | speed-up | others' cores |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['image_size']} | {r['batch']} | {r['folded_batchnorms']} | {r['plain_ms']} | "
                     f"{r['folded_ms']} | {r['speedup']}x | {r['others_cores']} |")
    (OUT / "batchnorm_fold.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
