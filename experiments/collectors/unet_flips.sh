#!/usr/bin/env bash
# Test-time flips (rustlab.tta) on finished cross-collector U-Net runs (unet_cross.sh), with no
# retraining: each run's validation split and both collectors' test splits scored again with
# `rustlab evaluate --tta hvflip`, beside the plain evaluations the run already has
# (eval_seg_validation_hvflip.json, eval_on_<collector>_hvflip.json). unet_cross.py tables them.
#   bash experiments/collectors/unet_flips.sh RUN_NAME...     (e.g. corrosion-seg_px192_s0)
# The pixel IoU does not depend on the image-level calibration; the image call of a run trained
# without flips keeps the area threshold fitted without them, so only IoU is read from these.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/unet_cross}
for name in "$@"; do
  run="$OUT/$name"
  if [ ! -f "$run/eval_seg_validation_hvflip.json" ]; then
    nice -n 5 rustlab evaluate -c "$run" --split validation --tta hvflip --json > "$run/eval_seg_validation_hvflip.json.tmp"
    mv "$run/eval_seg_validation_hvflip.json.tmp" "$run/eval_seg_validation_hvflip.json"
  fi
  for held in corrosion-seg pipe-seg; do
    if [ ! -f "$run/eval_on_${held}_hvflip.json" ]; then
      nice -n 5 rustlab evaluate -c "$run" --data "$SHARED/$held" --split test --tta hvflip --json \
        > "$run/eval_on_${held}_hvflip.json.tmp"
      mv "$run/eval_on_${held}_hvflip.json.tmp" "$run/eval_on_${held}_hvflip.json"
    fi
  done
  echo "flips scored: $run"
done
