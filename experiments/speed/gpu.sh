#!/usr/bin/env bash
# Issue 16 item 4: the GPU path. The CUDA smoke tests (benchmarks/test_gpu.py: train one epoch and
# predict on CUDA with AMP; `rustlab bench speed --device cuda` with its options), then the GPU table:
# CNN training images/s (naive / rustlab with 0 and 4 DataLoader workers / compute-only bound;
# contiguous and channels_last; AMP; pinned memory with non_blocking copies), CNN and UNet predict
# latency and forward ms at batch 1 and 64 with peak GPU memory; then torch.compile on and off.
# Data: builtin:1024 (synthetic photos; the shared photos do not travel to a GPU machine).
# Usage: OUT=experiments/speed/gpu bash experiments/speed/gpu.sh
#   Where rustlab is not pip-installed (a bare GPU machine with torch): RUSTLAB_DEVICE_SETUP=1 puts the
#   checkout on PYTHONPATH with an entry-point record for the built-in plugins, and installs carried
#   wheels from .whl/ (datasets and what torch images lack: dill, multiprocess).
set -uo pipefail
OUT=${OUT:-experiments/speed/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ "${RUSTLAB_DEVICE_SETUP:-0}" = 1 ]; then
  . experiments/gpu/device_env.sh optional
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 RUSTLAB_CACHE=${RUSTLAB_CACHE:-/tmp/rustlab-gpu-cache}
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
$PY -m pytest -q -p no:cacheprovider benchmarks/test_gpu.py --benchmark-disable 2>&1 | tee "$OUT/smoke.txt"
$PY -m rustlab bench speed --device cuda --data builtin:1024 --only train --only predict --repeats 2 \
  --workers 0,4 --out "$OUT/eager" > /dev/null 2> "$OUT/eager.log"
echo "eager: exit $?"; cat "$OUT/eager/results.md" 2>/dev/null
$PY -m rustlab bench speed --device cuda --data builtin:1024 --only train --repeats 1 --workers 4 \
  --layout channels_last --compile both --out "$OUT/compile" > /dev/null 2> "$OUT/compile.log"
echo "compile: exit $?"; cat "$OUT/compile/results.md" 2>/dev/null
