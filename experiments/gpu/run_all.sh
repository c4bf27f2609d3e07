#!/usr/bin/env bash
# The accuracy runs that the shared 2-core CPU could not finish in one session, on a lent GPU
# machine in ONE call (the device tool; see experiments/gpu/README.md): the pretrained classifier
# and U-Net recipes over 3 seeds with their evaluations and the comparison against colour-rule,
# then the recommended recipe's leave-one-collector-out. Same recipes and seeds as on the CPU;
# on CUDA the trainer runs bf16 autocast. Photos: .gpu_data (experiments/gpu/bundle_data.py).
# Everything lands in $OUT/gpu-results.tgz (json, md, logs, curves; no weights).
set -uo pipefail
T0=$(date +%s)
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - T0) )); }
. experiments/gpu/device_env.sh || exit 1
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 RUSTLAB_CACHE=/tmp/rl-cache
R="python3 -m rustlab"
D=.gpu_data
W=/tmp/gpu-runs
mkdir -p "$W"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$W/gpu.txt"
$R models | tee "$W/models.txt"
stage() { echo "== $1 ($(left) s left)"; }

stage "classifier recipe, seeds 0-2"
for s in 0 1 2; do
  [ "$(left)" -gt 300 ] || break
  $R train --config experiments/pretrained_corrosion.toml --data $D/corrosion-cls --extra-data $D/corrosion-seg \
    --seed $s --device cuda --workers 8 --out $W --name cls_s$s > $W/cls_s$s.log 2>&1
  tail -3 $W/cls_s$s.log
done
$R train --model colour-rule --data $D/corrosion-cls --device cuda --out $W --name rule > $W/rule.log 2>&1
stage "classifier against colour-rule"
python3 experiments/compare.py $W/rule/best.safetensors $(ls $W/cls_s*/best.safetensors) \
  --set $D/corrosion-cls:test --set $D/corrosion-seg:test --set $D/metal-cls:all --set $D/pipe-seg:all \
  --set builtin:all --device cuda --json-out $W/cls_compare.json > $W/cls_compare.log 2>&1; tail -7 $W/cls_compare.log

stage "recommended recipe: leave-one-collector-out"
[ "$(left)" -gt 200 ] && $R bench collectors --model effnet-lite0-probe --config experiments/all_sources.toml \
  --data $D/corrosion-cls --data $D/metal-cls --data $D/corrosion-seg --data $D/pipe-seg --device cuda \
  --out $W/loco-effnet > $W/loco-effnet.log 2>&1; tail -22 $W/loco-effnet.log

stage "U-Net recipe, seeds 0-2"
python3 experiments/unet/negatives.py $D/corrosion-cls /tmp/negatives
for s in 0 1 2; do
  [ "$(left)" -gt 70 ] || break
  $R train --config experiments/unet_pretrained.toml --data $D/corrosion-seg --negatives /tmp/negatives \
    --seed $s --device cuda --workers 8 --out $W --name unet_s$s > $W/unet_s$s.log 2>&1
  $R evaluate -c $W/unet_s$s --data $D/corrosion-seg --data $D/pipe-seg --data $D/corrosion-cls --json \
    > $W/unet_s$s/eval.json 2>> $W/unet_s$s.log
  tail -2 $W/unet_s$s.log
done
stage "done"
find $W -name '*.safetensors' -delete
tar czf "$OUT/gpu-results.tgz" -C /tmp gpu-runs
ls -la "$OUT"
