#!/usr/bin/env bash
# Train one candidate from scratch, then score its best checkpoint (chosen on validation by the
# trainer) on every set with posthoc.py: corrosion-cls validation/test, corrosion-seg (all
# corroded: accuracy = recall) validation/test groups and all photos, builtin. Training queues on
# the shared CPU lock. Usage (repo root; for the cls+seg candidates run mix_sources.py first):
#   bash experiments/recipe/run_candidate.sh experiments/recipe/candidates/b_strong_aug.toml [train flags]
set -euo pipefail
cfg=$1; shift
name=${NAME:-$(basename "$cfg" .toml)}
OUT=${OUT:-experiments/recipe/out}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
flock /tmp/rustlab-cpu.lock "$PY" -m rustlab train --config "$cfg" --out "$OUT" --name "$name" "$@" 2>&1 \
  | tee "$OUT/$name.train.log"
mv "$OUT/$name.train.log" "$OUT/$name/train.log"
"$PY" experiments/recipe/posthoc.py "$OUT/$name/best.safetensors" --json > "$OUT/$name/scores.json"
