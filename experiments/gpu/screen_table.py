"""The GPU screen's table (screen_unet.sh -> screen.jsonl): rust IoU at p >= 0.5, plain and with
flips (hvflip), per run.

Usage (repo root): python experiments/gpu/screen_table.py [experiments/gpu/screen/screen.jsonl]
"""

import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "experiments/gpu/screen/screen.jsonl"
print("| run (config_seed) | wall s (3-4 runs sharing the GPU) | corrosion-seg validation, plain / flips | "
      "corrosion-seg test, plain / flips | pipe-seg test, plain / flips |")
print("|---|---|---|---|---|")
with open(path) as fh:
    runs = [json.loads(line) for line in fh]
for run in runs:
    cs, ps = run["corrosion-seg"], run["pipe-seg"]

    def pair(d, split):
        return f"{d[f'plain/{split}']['0.5']:.3f} / {d[f'hvflip/{split}']['0.5']:.3f}"

    print(f"| {run['name']} | {run['train_s']} | {pair(cs, 'validation')} | {pair(cs, 'test')} | {pair(ps, 'test')} |")
