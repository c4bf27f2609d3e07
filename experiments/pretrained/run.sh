#!/usr/bin/env bash
# One run of a pretrained recipe, then every evaluation results.md reads.
#   bash experiments/pretrained/run.sh NAME CONFIG [extra `rustlab train` flags...]
# Writes runs/pretrained/NAME (ignored by git). Runs under `nice` beside other jobs.
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
NAME=$1; CONFIG=$2; shift 2
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/pretrained}
RUN="$OUT/$NAME"
rm -rf "${RUN:?}"
start=$(date +%s)
nice -n ${NICE:-5} rustlab train --config "$CONFIG" --out "$OUT" --name "$NAME" "$@"
echo "train_wall_s $(( $(date +%s) - start ))" > "$RUN/wall.txt"
nice -n 5 rustlab evaluate -c "$RUN" --data "$SHARED/corrosion-cls" --data "$SHARED/corrosion-seg" --json > "$RUN/eval_test.json"
nice -n 5 rustlab evaluate -c "$RUN" --data "$SHARED/corrosion-cls" --data "$SHARED/corrosion-seg" --split validation --json > "$RUN/eval_validation.json"
nice -n 5 rustlab evaluate -c "$RUN" --data builtin --split all --json > "$RUN/eval_builtin.json"
echo done "$RUN"
