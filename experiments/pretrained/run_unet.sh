#!/usr/bin/env bash
# The pretrained U-Net recipe, then the evaluations experiments/unet/results.md reads.
#   bash experiments/pretrained/run_unet.sh NAME [extra `rustlab train` flags...]
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
NAME=$1; shift
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/pretrained}
NEG=${NEG:-${TMPDIR:-/tmp}/rustlab-unet-negatives}
RUN="$OUT/$NAME"
python experiments/unet/negatives.py "$SHARED/corrosion-cls" "$NEG"
rm -rf "${RUN:?}"
start=$(date +%s)
nice -n 5 rustlab train --config experiments/unet_pretrained.toml --negatives "$NEG" --out "$OUT" --name "$NAME" "$@"
echo "train_wall_s $(( $(date +%s) - start ))" > "$RUN/wall.txt"
nice -n 5 rustlab evaluate -c "$RUN" --split test --json > "$RUN/eval_seg_test.json"
nice -n 5 rustlab evaluate -c "$RUN" --split validation --json > "$RUN/eval_seg_validation.json"
nice -n 5 rustlab evaluate -c "$RUN" --data "$SHARED/corrosion-cls" --split test --json > "$RUN/eval_cls_test.json"
echo done "$RUN"
