#!/usr/bin/env bash
# Which input size for the CNN? Same recipe at 32/64/96/128 px on corrosion-cls (publisher's split),
# selected by validation accuracy. Usage: bash experiments/input_size/run.sh [DATA] [SIZES]
set -euo pipefail
DATA=${1:-../shared/data/corrosion-cls}
SIZES=${2:-32 64 96 128}
OUT=${OUT:-experiments/input_size/out}
for size in $SIZES; do
  rm -rf "$OUT/size-$size"
  rustlab train --model cnn --data "$DATA" --image-size "$size" --epochs 30 --set batch_norm=true \
    --seed 0 --out "$OUT" --name "size-$size"
done
python experiments/summarize.py "$OUT"/size-* > experiments/input_size/results.md
