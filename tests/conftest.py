"""Shared fixtures: a private cache, tiny model configs, a trained tiny checkpoint per task."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tiny configs per model keep the whole suite within minutes on 2 CPU cores.
TINY = {
    "cnn": {"widths": [8, 16, 16], "hidden": 32, "image_size": 32},
    "unet": {"base_width": 4, "depth": 2, "image_size": 32},
}
TINY_DATA = "builtin:96"


def tiny_config(model: str) -> dict:
    return dict(TINY.get(model, {"image_size": 32}))


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/rustlab."""
    os.environ["RUSTLAB_CACHE"] = str(tmp_path_factory.mktemp("rustlab-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-datasets")))
    yield


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not present (real photos live beside the project, not in it)")
    return path


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


def train_tiny(model: str, out: Path, epochs: int = 2, data: str = TINY_DATA, **kw):
    from rustlab.config import TrainConfig
    from rustlab.train import train

    cfg = TrainConfig(model=model, data=data, epochs=epochs, batch_size=16, out=str(out), name=kw.pop("name", model),
                      model_config=tiny_config(model), device="cpu", **kw)
    return train(cfg, log=lambda *_: None)


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory):
    """A tiny CNN trained for 2 epochs on builtin data (shared by predict/evaluate tests)."""
    return train_tiny("cnn", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def cnn_checkpoint(cnn_run) -> Path:
    return cnn_run.run_dir / "best.safetensors"


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
