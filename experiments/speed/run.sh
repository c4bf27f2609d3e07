#!/usr/bin/env bash
# Issue 7: the seed's naive training pipeline, rustlab's, and the compute-only bound side by side,
# plus Predictor latency and cold start, in one run (`rustlab bench speed`, about 8 min on 2 cores);
# then the training part again at the seed's 32 px input; prediction and cold start alone (a short
# run, easy to fit in a moment when nothing else runs); folder throughput by batch size.
# Timings need a quiet machine: on a shared one, run it under `flock /tmp/rustlab-cpu.lock` and read
# the "other processes" column. Needs the venv's `rustlab` and `python` on PATH.
# Usage: bash experiments/speed/run.sh [DATA]
#   writes results.{md,json} here, in seed-32px/, predict/ and predict-path/, predict_batch.txt and engines.md
set -euo pipefail
DATA=${1:-../shared/data/corrosion-cls}
[ -d "$DATA" ] || DATA=builtin
OUT=${OUT:-experiments/speed}
rustlab bench speed --data "$DATA" --out "$OUT"
rustlab bench speed --data "$DATA" --only train --image-size 32 --out "$OUT/seed-32px"
rustlab bench speed --data "$DATA" --only predict --only startup --out "$OUT/predict"
python experiments/speed/predict_batch.py "$DATA" > "$OUT/predict_batch.txt"
# Issue 33: the default predict path (onnxruntime on a cached export) beside PyTorch, per model,
# and folder predict against the 2-core bound for the recommended model and the CNN
python experiments/speed/engines.py > "$OUT/engines.md"
rustlab bench speed --data "$DATA" --only predict --predict-model effnet-lite0-cells --predict-model cnn \
  --layout contiguous --out "$OUT/predict-path"
