# Two commands on a fresh clone: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed-dev
DEMO = runs/demo-cnn

.PHONY: install demo test test-fast bench bench-smoke clean

# One venv with everything (dev extra: pytest, pytest-benchmark, hypothesis, tkinterdnd2, onnx).
# torch/torchvision resolve from this machine's local wheels through pip's constraint file.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO) runs/demo-images
	$(BIN)/rustlab train --model cnn --data builtin --epochs 8 --image-size 64 --out runs --name demo-cnn
	$(BIN)/rustlab evaluate --checkpoint $(DEMO)/best.safetensors
	$(BIN)/rustlab samples runs/demo-images --count 2
	$(BIN)/rustlab predict --checkpoint $(DEMO)/best.safetensors runs/demo-images

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests
	# the benchmark suite in smoke mode (tiny sizes, not timed), so it cannot rot; a separate
	# run because tests/ and benchmarks/ each have their own conftest module
	$(BIN)/python -m pytest -q -p no:cacheprovider benchmarks --benchmark-disable

bench: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks --benchmark-only --benchmark-sort=name

clean:
	rm -rf runs .pytest_cache .benchmarks
