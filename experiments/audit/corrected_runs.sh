#!/usr/bin/env bash
# The results tables' corrected-label columns (issue 29): every run below trains AND scores on
# the labels corrected by eye (data/corrections/), next to the committed publisher-label runs.
# One job at a time on 2 cores; outputs under runs/ (not committed; the numbers are in
# experiments/collectors/results.md, experiments/pretrained/results.md and the README).
set -euo pipefail
cd "$(dirname "$0")/../.."
R=.venv/bin/rustlab
SRC="--data ../shared/data/corrosion-cls --data ../shared/data/metal-cls --data ../shared/data/corrosion-seg --data ../shared/data/pipe-seg"
# 1. leave-one-collector-out, the recommended recipe (3 seeds) and the rule
[ -f runs/collectors/effnet-cells-corrected/collectors.json ] || \
  $R bench collectors --model effnet-lite0-cells --config experiments/all_sources.toml $SRC \
    --seed 0 --seed 1 --seed 2 --corrections data/corrections --out runs/collectors/effnet-cells-corrected
# 2. the probe (no randomness: one seed)
[ -f runs/collectors/effnet-probe-corrected/collectors.json ] || \
  $R bench collectors --model effnet-lite0-probe --config experiments/all_sources.toml $SRC \
    --seed 0 --corrections data/corrections --out runs/collectors/effnet-probe-corrected
# 2b. the cnn at the matrix's reduced budget (12 epochs at 64 px), 3 seeds
[ -f runs/collectors/cnn-corrected/collectors.json ] || \
  $R bench collectors --model cnn --config experiments/cnn_corrosion.toml --epochs 12 --image-size 64 $SRC \
    --seed 0 --seed 1 --seed 2 --corrections data/corrections --out runs/collectors/cnn-corrected
# 3. each collector's own test photos: the corrosion recipe (3 seeds), the probe and the rule,
#    scored on corrected labels (their default) and on the publisher's (--corrections none)
for seed in 0 1 2; do
  [ -f runs/corrected/cells-seed$seed/best.safetensors ] || \
    $R train --config experiments/pretrained_corrosion.toml --corrections data/corrections --seed $seed \
      --out runs/corrected --name cells-seed$seed
done
[ -f runs/corrected/probe/best.safetensors ] || \
  $R train --config experiments/pretrained_corrosion.toml --model effnet-lite0-probe --corrections data/corrections \
    --out runs/corrected --name probe
[ -f runs/corrected/rule/best.safetensors ] || \
  $R train --model colour-rule --data ../shared/data/corrosion-cls --corrections data/corrections \
    --out runs/corrected --name rule
for run in cells-seed0 cells-seed1 cells-seed2 probe rule; do
  for labels in data/corrections none; do
    $R evaluate -c runs/corrected/$run --data ../shared/data/corrosion-cls --data ../shared/data/corrosion-seg \
      --corrections $labels --json > runs/corrected/$run-$(basename $labels).json
  done
  $R evaluate -c runs/corrected/$run --data builtin --split all --json > runs/corrected/$run-builtin.json
done
# 4. the same recipes trained on the publisher's labels, scored on both label sets (the 2 x 2)
[ -f runs/publisher/cells-seed0/best.safetensors ] || \
  $R train --config experiments/pretrained_corrosion.toml --corrections none --out runs/publisher --name cells-seed0
[ -f runs/publisher/probe/best.safetensors ] || \
  $R train --config experiments/pretrained_corrosion.toml --model effnet-lite0-probe --corrections none \
    --out runs/publisher --name probe
[ -f runs/publisher/rule/best.safetensors ] || \
  $R train --model colour-rule --data ../shared/data/corrosion-cls --corrections none --out runs/publisher --name rule
for run in cells-seed0 probe rule; do
  for labels in data/corrections none; do
    $R evaluate -c runs/publisher/$run --data ../shared/data/corrosion-cls --data ../shared/data/corrosion-seg \
      --corrections $labels --json > runs/publisher/$run-$(basename $labels).json
  done
done
# the validation tie between the two cells models, on the corrected validation labels
for d in publisher corrected; do
  $R evaluate -c runs/$d/cells-seed0 --data ../shared/data/corrosion-cls --split validation --corrections data/corrections
done
