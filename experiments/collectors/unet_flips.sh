#!/usr/bin/env bash
# Test-time flips (rustlab.inference.tta) on finished cross-collector U-Net runs (unet_cross.sh), with no
# retraining: each run's validation split and both collectors' test splits scored again with
# `rustlab evaluate --tta "$TTA"`, beside the plain evaluations the run already has
# (eval_seg_validation_${TTA}.json, eval_on_<collector>_${TTA}.json). unet_cross.py tables them.
#   bash experiments/collectors/unet_flips.sh RUN_NAME...     (e.g. corrosion-seg_px192_s0)
#   TTA=none bash experiments/collectors/unet_flips.sh RUN_NAME...   (runs whose checkpoint records
#     flips, as the recipe's since 17:38 UTC: the same splits scored without them, *_none.json)
# The pixel IoU does not depend on the image-level calibration; the image call of a run trained
# without flips keeps the area threshold fitted without them, so only IoU is read from these.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/unet_cross}
TTA=${TTA:-hvflip}
for name in "$@"; do
  run="$OUT/$name"
  if [ ! -f "$run/eval_seg_validation_${TTA}.json" ]; then
    nice -n 5 rustlab evaluate -c "$run" --split validation --tta "$TTA" --json > "$run/eval_seg_validation_${TTA}.json.tmp"
    mv "$run/eval_seg_validation_${TTA}.json.tmp" "$run/eval_seg_validation_${TTA}.json"
  fi
  for held in corrosion-seg pipe-seg; do
    if [ ! -f "$run/eval_on_${held}_${TTA}.json" ]; then
      nice -n 5 rustlab evaluate -c "$run" --data "$SHARED/$held" --split test --tta "$TTA" --json \
        > "$run/eval_on_${held}_${TTA}.json.tmp"
      mv "$run/eval_on_${held}_${TTA}.json.tmp" "$run/eval_on_${held}_${TTA}.json"
    fi
  done
  echo "scored with --tta $TTA: $run"
done
