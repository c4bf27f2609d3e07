"""Shared fixtures: a private cache, tiny model configs, a trained tiny checkpoint per task."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

TINY_DATA = "builtin:96"


def tiny_config(model: str) -> dict:
    """The model's tiny variant: its plugin's own ``smoke_config`` (rustlab.registry.ModelSpec),
    the one written-out copy that the tests, benchmarks/ and `bench kernels --quick` all read.
    A model without one trains at 32 px (its default config otherwise): the suite stays within
    minutes on 2 CPU cores."""
    import copy
    import dataclasses

    from rustlab.registry import get_registry

    spec = get_registry().models.get(model)
    if spec is None:
        return {"image_size": 32}
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    return {**({"image_size": 32} if "image_size" in fields else {}), **copy.deepcopy(spec.smoke_config)}


class _TinyConfigs(Mapping):
    """``TINY[name]``: ``tiny_config(name)`` for the tests that index it like a dict."""

    def __getitem__(self, model: str) -> dict:
        return tiny_config(model)

    def __iter__(self):
        from rustlab.registry import get_registry

        return iter(get_registry().models)

    def __len__(self) -> int:
        from rustlab.registry import get_registry

        return len(get_registry().models)


TINY = _TinyConfigs()


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/rustlab."""
    os.environ["RUSTLAB_CACHE"] = str(tmp_path_factory.mktemp("rustlab-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-datasets")))
    # `--engine auto` exports each checkpoint to ONNX on first use (2-10 s each); the suite
    # trains dozens of tiny checkpoints, so it predicts in PyTorch unless a test asks for
    # onnxruntime (tests/test_engine.py covers the default path, its cache and its fallback)
    os.environ.setdefault("RUSTLAB_ENGINE", "torch")
    yield


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not present (real photos live beside the project, not in it)")
    return path


def assert_same_checkpoints(run_a: Path, run_b: Path) -> None:
    """best/last.safetensors of two run folders hold the same tensors (float tolerance for the
    thread pool's reduction order)."""
    import torch
    from safetensors.torch import load_file

    for name in ("best.safetensors", "last.safetensors"):
        ours, theirs = load_file(str(Path(run_a) / name)), load_file(str(Path(run_b) / name))
        assert ours.keys() == theirs.keys()
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-6)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run `rustlab ARGS` in-process: (exit code, stdout, stderr)."""
    from rustlab.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def train_tiny(model: str, out: Path, epochs: int = 2, data: str = TINY_DATA, log=None, stop_event=None, **kw):
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    cfg = TrainConfig(model=model, data=data, epochs=epochs, batch_size=16, out=str(out), name=kw.pop("name", model),
                      model_config=tiny_config(model), device="cpu", **kw)
    return train(cfg, log=log or (lambda *_: None), stop_event=stop_event)


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory):
    """A tiny CNN trained for 2 epochs on builtin data (shared by predict/evaluate tests)."""
    return train_tiny("cnn", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def cnn_checkpoint(cnn_run) -> Path:
    return cnn_run.run_dir / "best.safetensors"


def write_collector(root: Path, seed: int, count: int, size: int) -> Path:
    """A folder source of another collector: ``count`` synthetic photos each in rust/ and steel/
    (classes named unlike builtin's, so labels must be mapped by meaning)."""
    import numpy as np
    from PIL import Image

    from rustlab.data.synthetic import render_sample

    for i in range(count):
        for has_rust, folder in ((True, "rust"), (False, "steel")):
            (root / folder).mkdir(parents=True, exist_ok=True)
            img, _ = render_sample(np.random.default_rng([seed, i, has_rust]), size, has_rust)
            Image.fromarray(img).save(root / folder / f"{folder}_{i}.png")
    return root


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory) -> Path:
    """A folder of a few synthetic rust / no-rust PNGs."""
    import numpy as np
    from PIL import Image

    from rustlab.data.synthetic import render_sample

    folder = tmp_path_factory.mktemp("samples")
    for i in range(2):
        for has_rust in (True, False):
            img, _ = render_sample(np.random.default_rng([99, i, has_rust]), 80, has_rust)
            Image.fromarray(img).save(folder / f"{'rust' if has_rust else 'clean'}_{i}.png")
    return folder


sys.path.insert(0, str(ROOT / "tests"))
