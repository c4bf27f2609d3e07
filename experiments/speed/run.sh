#!/usr/bin/env bash
# Issue 7: the seed's naive training pipeline, rustlab's, and the compute-only bound side by side,
# plus Predictor latency and cold start, in one run (`rustlab bench speed`, about 5 min on 2 cores);
# then the training part again at the seed's 32 px input. Timings need a quiet machine: on a shared
# one, run it under `flock /tmp/rustlab-cpu.lock`.
# Usage: bash experiments/speed/run.sh [DATA]   (writes experiments/speed/results.{md,json} and seed-32px/)
set -euo pipefail
DATA=${1:-../shared/data/corrosion-cls}
[ -d "$DATA" ] || DATA=builtin
OUT=${OUT:-experiments/speed}
rustlab bench speed --data "$DATA" --out "$OUT"
rustlab bench speed --data "$DATA" --only train --image-size 32 --out "$OUT/seed-32px"
