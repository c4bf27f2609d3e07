#!/usr/bin/env bash
# One call on a lent GPU machine (the device tool): first the CUDA smoke tests (every registered
# model trains an epoch and predicts on CUDA with AMP: benchmarks/test_gpu.py), then a screen of
# the U-Net recipe (experiments/unet_pretrained.toml) over its training length and size, 3 seeds
# each, seed-major so that a cut-off run still leaves whole configurations of early seeds:
#   e6_192 (the recipe), e12_192, e20_192, e12_256 on corrosion-seg + negatives,
#   both_e12_192, both_e20_192 on corrosion-seg + pipe-seg + negatives.
# Each run is scored by experiments/unet/inference_levers.py (validation and test rust IoU, plain
# and with flip TTA); one JSON line per run lands in $OUT/screen.jsonl as soon as it ends.
# A screen, not the measurement: photos from experiments/gpu/bundle_data.py (<= 256 px, JPEG 85),
# bf16 autocast. What wins here is confirmed on the CPU, under a rule written before its seeds.
# Here (repo root), before the call:
#   python experiments/unet/negatives.py ../shared/data/corrosion-cls /tmp/rustlab-unet-negatives
#   python experiments/gpu/bundle_data.py ../shared/data .gpu_screen --max-side 256 \
#     --set corrosion-seg --set pipe-seg --set negatives=/tmp/rustlab-unet-negatives
#   (and .whl as in experiments/gpu/README.md; carry .whl and .gpu_screen)
# On the device: BUDGET=420 bash experiments/gpu/screen_unet.sh
# A dry run here (CPU, tiny): SETUP=0 PY=.venv/bin/python DEVICE=cpu EXTRA="--epochs 1 --image-size 64" \
#   OUT=/tmp/screen-dry BUDGET=900 bash experiments/gpu/screen_unet.sh
set -uo pipefail
T0=$(date +%s)
left() { echo $(( ${BUDGET:-420} - ($(date +%s) - T0) )); }
OUT=${OUT:-/tmp/screen-out}
mkdir -p "$OUT"
PY=${PY:-python3}
if [ "${SETUP:-1}" = 1 ]; then  # a bare GPU machine: rustlab from the checkout, carried wheels
  . experiments/gpu/device_env.sh || exit 1
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 RUSTLAB_CACHE=${RUSTLAB_CACHE:-/tmp/rl-cache}
DEVICE=${DEVICE:-cuda}
D=${DATA:-.gpu_screen}
W=${RUNS:-/tmp/screen-runs}
mkdir -p "$W"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"
  nproc; } > "$OUT/machine.txt" 2>&1
echo "== smoke ($(left) s left)"
[ "${SMOKE:-1}" = 1 ] && timeout 150 $PY -m pytest -q -p no:cacheprovider benchmarks/test_gpu.py --benchmark-disable -x -rs \
  > "$OUT/smoke.txt" 2>&1
tail -3 "$OUT/smoke.txt"

one() {  # NAME [rustlab train flags...]: train, score, append a line to screen.jsonl
  local name=$1; shift
  if [ "$(left)" -lt 70 ]; then echo "skip $name ($(left) s left)"; return; fi
  local t0; t0=$(date +%s)
  # shellcheck disable=SC2086  # EXTRA holds several flags
  if ! $PY -m rustlab train --config experiments/unet_pretrained.toml --negatives "$D/negatives" \
      --device "$DEVICE" --workers 4 --out "$W" --name "$name" "$@" ${EXTRA:-} > "$W/$name.log" 2>&1; then
    echo "FAIL $name"; tail -4 "$W/$name.log" | tee -a "$OUT/failures.txt"; return
  fi
  local train_s=$(( $(date +%s) - t0 ))
  $PY experiments/unet/inference_levers.py "$W/$name" --device "$DEVICE" --json-out "$W/$name/levers.json" \
    >> "$W/$name.log" 2>&1
  $PY experiments/unet/inference_levers.py "$W/$name" --data "$D/pipe-seg" --device "$DEVICE" \
    --json-out "$W/$name/levers_pipe.json" >> "$W/$name.log" 2>&1
  $PY - "$W/$name" "$name" "$train_s" >> "$OUT/screen.jsonl" <<'EOF'
import json, sys
run, name, train_s = sys.argv[1], sys.argv[2], int(sys.argv[3])
own = json.load(open(f"{run}/levers.json"))[run]
pipe = json.load(open(f"{run}/levers_pipe.json"))[run]
print(json.dumps({"name": name, "train_s": train_s, "corrosion-seg": own, "pipe-seg": pipe}))
EOF
  echo "done $name in ${train_s}s ($(left) s left)"
}
export -f one left
export T0 D W OUT PY DEVICE EXTRA

jobs_list=()
for s in ${SEEDS:-0 1 2}; do
  cs="--data $D/corrosion-seg"
  jobs_list+=("e6_192_s$s --seed $s $cs"
              "e12_192_s$s --seed $s --epochs 12 $cs"
              "e20_192_s$s --seed $s --epochs 20 $cs"
              "e12_256_s$s --seed $s --epochs 12 --image-size 256 $cs"
              "both_e12_192_s$s --seed $s --epochs 12 --data $D/corrosion-seg --data $D/pipe-seg"
              "both_e20_192_s$s --seed $s --epochs 20 --data $D/corrosion-seg --data $D/pipe-seg")
done
echo "== screen ($(left) s left)"
# three runs at a time: the GPU is far from full with one, the 16 cores feed 3 x 4 loader workers
printf '%s\n' "${jobs_list[@]}" | xargs -P "${PARALLEL:-3}" -I{} bash -c 'one {}'
echo "== end ($(left) s left)"
for f in "$W"/*.log; do tail -2 "$f"; done > "$OUT/tails.txt" 2>&1
