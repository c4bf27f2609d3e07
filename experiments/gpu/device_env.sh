# Sourced (not run) by the scripts that start on a bare lent GPU machine, whose python3 has torch
# and timm but not rustlab: puts the checkout on PYTHONPATH with an entry-point record for the
# built-in plugins, and installs the wheels carried in .whl/ (datasets and what torch images lack).
#   . experiments/gpu/device_env.sh || exit 1            (the wheels must be there)
#   . experiments/gpu/device_env.sh optional             (install them only if .whl/ exists)
# Uses $PY (default python3). Returns non-zero when the wheels do not install (the rest is set
# up all the same, for callers that go on without them).
RUSTLAB_SITE=/tmp/rustlab-site
mkdir -p "$RUSTLAB_SITE/rustlab-0.1.0.dist-info"
rustlab_wheels=0
if [ "${1:-}" != optional ] || [ -d .whl ]; then
  ${PY:-python3} -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$RUSTLAB_SITE" \
    .whl/*.whl || rustlab_wheels=1
fi
printf 'Metadata-Version: 2.1\nName: rustlab\nVersion: 0.1.0\n' > "$RUSTLAB_SITE/rustlab-0.1.0.dist-info/METADATA"
printf '[rustlab.plugins]\ncnn = rustlab_cnn\nunet = rustlab_unet\ncolour-rule = rustlab_colour\npretrained = rustlab_pretrained\n' \
  > "$RUSTLAB_SITE/rustlab-0.1.0.dist-info/entry_points.txt"
export PYTHONPATH="$RUSTLAB_SITE:$PWD:$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}"
return $rustlab_wheels
