#!/usr/bin/env bash
# Cross-collector U-Net (issue 15): the pretrained U-Net recipe (experiments/unet_pretrained.toml)
# trained on corrosion-seg, on pipe-seg, and on both (shuffled, or balanced by source), each with the corrosion-cls no_rust photos of
# the publisher's train split as negatives; every run scored on both collectors' test splits
# (seeded 70/15/15 split, split_seed 0 from the recipe) and on corrosion-cls test (image call).
#   bash experiments/collectors/unet_cross.sh [SEED...]        (default: 0 1 2)
#   TAG=strong TRAIN="--augment strong" bash experiments/collectors/unet_cross.sh 0   (a lever: runs NAME_strong_sS)
#   VARIANTS="corrosion-seg both" ...                          (only those training sets)
#   python experiments/collectors/unet_cross.py                 (tables -> unet_cross.md/.json)
#   TAG=px192-labelled TRAIN="--image-size 192 --extra-data /tmp/rustlab-unet-labelled" VARIANTS=corrosion-seg ...
#     (the labelled corrosion-cls photos, no masks: experiments/unet/negatives.py --labelled, made here)
# Every run is also scored by its image-level call on the labelled photos' validation split (a
# validation measure of the call: no test photo of corrosion-cls is in that folder), and on both
# collectors' validation splits (a recipe change is checked there on the collector it did not train on).
# Resumable: a run whose evaluations exist is not trained again.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/unet_cross}
LABELLED=${TMPDIR:-/tmp}/rustlab-unet-labelled
python experiments/unet/negatives.py "$SHARED/corrosion-cls" "$LABELLED" --labelled
SEEDS=${*:-0 1 2}
for seed in $SEEDS; do
  for train in ${VARIANTS:-corrosion-seg pipe-seg both both-balanced}; do
    name="${train}${TAG:+_$TAG}_s${seed}"
    if [ ! -f "$OUT/$name/eval_on_pipe-seg.json" ]; then
      case $train in
        both) data=(--data "$SHARED/corrosion-seg" --data "$SHARED/pipe-seg") ;;
        both-balanced) data=(--data "$SHARED/corrosion-seg" --data "$SHARED/pipe-seg" --balance sources) ;;
        *) data=(--data "$SHARED/$train") ;;
      esac
      # shellcheck disable=SC2086  # TRAIN holds several flags
      OUT=$OUT bash experiments/pretrained/run_unet.sh "$name" --seed "$seed" "${data[@]}" ${TRAIN:-}
      for held in corrosion-seg pipe-seg; do  # written whole or not at all: a killed run is redone
        nice -n 5 rustlab evaluate -c "$OUT/$name" --data "$SHARED/$held" --split test --json \
          > "$OUT/$name/eval_on_$held.json.tmp"
        mv "$OUT/$name/eval_on_$held.json.tmp" "$OUT/$name/eval_on_$held.json"
      done
    fi
    for held in corrosion-seg pipe-seg; do  # validation splits: where a recipe change is checked on the other collector
      if [ ! -f "$OUT/$name/eval_on_${held}_validation.json" ]; then
        nice -n 5 rustlab evaluate -c "$OUT/$name" --data "$SHARED/$held" --split validation --json \
          > "$OUT/$name/eval_on_${held}_validation.json.tmp"
        mv "$OUT/$name/eval_on_${held}_validation.json.tmp" "$OUT/$name/eval_on_${held}_validation.json"
      fi
    done
    if [ ! -f "$OUT/$name/eval_labelled_validation.json" ]; then  # also scores runs made before it existed
      nice -n 5 rustlab evaluate -c "$OUT/$name" --data "$LABELLED" --split validation --json \
        > "$OUT/$name/eval_labelled_validation.json.tmp"
      mv "$OUT/$name/eval_labelled_validation.json.tmp" "$OUT/$name/eval_labelled_validation.json"
    fi
  done
done
