#!/usr/bin/env bash
# U-Net on real masks: corrosion-seg (split by source_group) + corrosion-cls no_rust (publisher's
# train split only) as negatives; then rust IoU/Dice on the held-out scenes and the image-level
# call on corrosion-cls' test split. Run it under the CPU lock:
#   flock /tmp/rustlab-cpu.lock bash experiments/unet/run.sh
# With MEASURE=1 the input size, width and epochs are picked by timing (measure.py) for BUDGET
# seconds of training; otherwise the committed recipe unet_corrosion.toml is used.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH"
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-experiments/unet/out}
NAME=${NAME:-unet-corrosion}
NEG=${NEG:-${TMPDIR:-/tmp}/rustlab-unet-negatives}
BUDGET=${BUDGET:-1260}

python experiments/unet/negatives.py "$SHARED/corrosion-cls" "$NEG"
FLAGS=(--config experiments/unet/unet_corrosion.toml)
if [[ "${MEASURE:-0}" == 1 ]]; then
  # ~455 + ~355 training and ~97 + ~76 validation images (70/15/15 by group)
  read -r SIZE WIDTH EPOCHS < <(python experiments/unet/measure.py 810 173 "$BUDGET")
  echo "picked: --image-size $SIZE --set base_width=$WIDTH --epochs $EPOCHS" >&2
  FLAGS+=(--image-size "$SIZE" --set "base_width=$WIDTH" --epochs "$EPOCHS")
fi
rm -rf "${OUT:?}/$NAME"
rustlab train "${FLAGS[@]}" --data "$SHARED/corrosion-seg" --negatives "$NEG" --out "$OUT" --name "$NAME"
CKPT="$OUT/$NAME/best.safetensors"
rustlab evaluate --checkpoint "$CKPT" --split test > "$OUT/$NAME/eval_seg_test.txt"
rustlab evaluate --checkpoint "$CKPT" --split test --json > "$OUT/$NAME/eval_seg_test.json"
rustlab evaluate --checkpoint "$CKPT" --data "$SHARED/corrosion-cls" --split test > "$OUT/$NAME/eval_cls_test.txt"
rustlab evaluate --checkpoint "$CKPT" --data "$SHARED/corrosion-cls" --split test --json > "$OUT/$NAME/eval_cls_test.json"
cat "$OUT/$NAME/eval_seg_test.txt" "$OUT/$NAME/eval_cls_test.txt"
