# Two commands on a fresh clone: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed-dev

.PHONY: install demo default-model test test-fast bench bench-smoke clean

# One venv with everything (dev extra: pytest, pytest-benchmark, hypothesis, tkinterdnd2, onnx).
# torch/torchvision resolve from this machine's local wheels through pip's constraint file.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The default model's calls on photos (no training), then a plugin trained and predicting (demo/demo.py).
demo: $(STAMP)
	$(BIN)/python demo/demo.py runs/demo

# Rebuild the packaged default model from the committed recipe (needs ../shared/data; ~3 min on
# 2 cores). tests/test_default_model.py fails while it is stale.
default-model: $(STAMP)
	rm -rf runs/default-model
	$(BIN)/rustlab train --config experiments/all_sources.toml --out runs --name default-model
	$(BIN)/python -m rustlab.inference.default_model build runs/default-model

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests
	# the benchmark suite in smoke mode (tiny sizes, not timed), so it cannot rot; a separate
	# run because tests/ and benchmarks/ each have their own conftest module
	$(BIN)/python -m pytest -q -p no:cacheprovider benchmarks --benchmark-disable

bench: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks --benchmark-only --benchmark-sort=name

clean:
	rm -rf runs .pytest_cache .benchmarks
