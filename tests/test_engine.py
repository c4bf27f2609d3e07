"""The default predict path (rustlab.inference.engine): onnxruntime on an export cached by the
checkpoint's sha256, checked against PyTorch, with a one-line fallback to PyTorch.

The rest of the suite runs PyTorch (RUSTLAB_ENGINE=torch in conftest); these tests clear it."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import run_cli

pytest.importorskip("onnxruntime")


@pytest.fixture
def auto(monkeypatch):
    """``--engine auto`` as a user gets it (no RUSTLAB_ENGINE)."""
    monkeypatch.delenv("RUSTLAB_ENGINE", raising=False)


@pytest.fixture
def checkpoint(cnn_checkpoint, tmp_path):
    """A private copy: each test starts with nothing cached for it."""
    from rustlab.inference.engine import cache_path

    copy = tmp_path / "model.safetensors"
    shutil.copy(cnn_checkpoint, copy)
    cache_path(copy, "none").unlink(missing_ok=True)
    return copy


def _photos(sample_images):
    return [str(p) for p in sorted(sample_images.iterdir())][:6]


def test_auto_runs_onnxruntime_on_a_cached_export_with_the_same_answers(auto, checkpoint, sample_images):
    from rustlab.inference.engine import cache_path
    from rustlab.inference.predictor import Predictor

    fast = Predictor(checkpoint, device="cpu")
    assert fast.engine == "onnxruntime" and fast.note is None
    cached = cache_path(checkpoint, "none")
    assert cached.is_file() and cached.parent.name == "onnx"
    slow = Predictor(checkpoint, device="cpu", engine="torch")
    assert slow.engine == "pytorch"
    for path in _photos(sample_images):
        a, b = fast.predict(path), slow.predict(path)
        assert a.label == b.label and a.rust_probability == pytest.approx(b.rust_probability, abs=1e-5)
    folder = list(fast.predict_many(_photos(sample_images), batch_size=4))
    assert [p.rust_probability for p in folder] == pytest.approx(
        [slow.predict(p).rust_probability for p in _photos(sample_images)], abs=1e-5)


def test_the_export_is_made_once_and_reused(auto, checkpoint, monkeypatch):
    from rustlab.inference import export
    from rustlab.inference.engine import cache_path
    from rustlab.inference.predictor import Predictor

    Predictor(checkpoint, device="cpu")
    stamp = cache_path(checkpoint, "none").stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although cached")

    monkeypatch.setattr(export, "export_onnx", no_export)
    assert Predictor(checkpoint, device="cpu").engine == "onnxruntime"
    assert cache_path(checkpoint, "none").stat().st_mtime_ns == stamp


def test_the_cache_is_keyed_by_the_checkpoints_bytes(checkpoint, tmp_path):
    from rustlab.inference.engine import cache_path

    other = tmp_path / "other.safetensors"
    other.write_bytes(checkpoint.read_bytes() + b" ")
    assert cache_path(checkpoint, "none") != cache_path(other, "none")
    assert cache_path(checkpoint, "none") != cache_path(checkpoint, "hflip")
    assert cache_path(checkpoint, "none") == cache_path(shutil.copy(checkpoint, tmp_path / "same.safetensors"), "none")


def test_a_damaged_cached_export_is_rebuilt(auto, checkpoint):
    from rustlab.inference.engine import cache_path
    from rustlab.inference.predictor import Predictor

    path = cache_path(checkpoint, "none")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an onnx model")
    predictor = Predictor(checkpoint, device="cpu")
    assert predictor.engine == "onnxruntime" and path.stat().st_size > 1000


def test_an_export_that_disagrees_with_pytorch_is_not_used(auto, checkpoint, monkeypatch):
    from rustlab.inference import engine
    from rustlab.inference.predictor import Predictor

    monkeypatch.setattr(engine, "_matches", lambda runner, model, size: False)
    predictor = Predictor(checkpoint, device="cpu")
    assert predictor.engine == "pytorch" and "does not match PyTorch" in predictor.note
    assert not engine.cache_path(checkpoint, "none").exists()  # not left for the next run


def test_without_onnxruntime_auto_falls_back_with_a_note_and_onnx_refuses(auto, checkpoint, monkeypatch):
    from rustlab.errors import RustlabError
    from rustlab.inference import engine
    from rustlab.inference.predictor import Predictor

    monkeypatch.setattr(engine, "_missing_modules", lambda: ["onnxruntime"])
    predictor = Predictor(checkpoint, device="cpu")
    assert predictor.engine == "pytorch"
    assert predictor.note.startswith("predicting in PyTorch") and "onnxruntime not installed" in predictor.note
    assert "\n" not in predictor.note
    with pytest.raises(RustlabError, match="--engine onnx: onnxruntime not installed"):
        Predictor(checkpoint, device="cpu", engine="onnx")


def test_a_small_job_does_not_wait_for_a_first_export_but_uses_a_cached_one(auto, checkpoint):
    from rustlab.inference.engine import EXPORT_PAYS_FROM, cache_path
    from rustlab.inference.predictor import Predictor

    small = Predictor(checkpoint, device="cpu", photos=3)
    assert small.engine == "pytorch" and small.note is None and not cache_path(checkpoint, "none").exists()
    assert Predictor(checkpoint, device="cpu", photos=EXPORT_PAYS_FROM).engine == "onnxruntime"  # exports
    assert Predictor(checkpoint, device="cpu", photos=3).engine == "onnxruntime"  # cached now: used


def test_predict_cli_says_why_it_fell_back(auto, checkpoint, sample_images, monkeypatch, capsys):
    from rustlab.inference import engine
    from rustlab.inference.predictor import Predictor

    Predictor(checkpoint, device="cpu")  # exported and cached: a one-photo job would use it
    monkeypatch.setattr(engine, "_missing_modules", lambda: ["onnxscript"])
    code, out, err = run_cli(capsys, "predict", "-c", str(checkpoint), _photos(sample_images)[0])
    assert code == 0 and "rust" in out
    assert err.count("note: predicting in PyTorch, not onnxruntime (onnxscript not installed)") == 1


def test_a_bad_engine_is_one_line(checkpoint, sample_images, monkeypatch, capsys):
    code, _, err = run_cli(capsys, "predict", "-c", str(checkpoint), "--engine", "tensorrt",
                           _photos(sample_images)[0])
    assert code == 2 and "tensorrt" in err
    monkeypatch.setenv("RUSTLAB_ENGINE", "fast")
    code, _, err = run_cli(capsys, "predict", "-c", str(checkpoint), _photos(sample_images)[0])
    assert code == 1 and "RUSTLAB_ENGINE='fast'" in err and "Traceback" not in err


def test_evaluate_scores_the_same_through_either_engine(auto, checkpoint):
    from rustlab.inference.evaluate import evaluate_checkpoint
    from rustlab.inference.predictor import Predictor

    Predictor(checkpoint, device="cpu")  # the export a small split would not wait for

    fast = evaluate_checkpoint(checkpoint, split="validation", device="cpu")
    slow = evaluate_checkpoint(checkpoint, split="validation", device="cpu", engine="torch")
    assert fast["engine"] == "onnxruntime" and slow["engine"] == "pytorch"
    for key in ("accuracy", "roc_auc", "loss"):
        assert fast[key] == pytest.approx(slow[key], abs=1e-5)


def test_the_runner_takes_the_models_input(auto, checkpoint):
    from rustlab.inference.engine import onnx_runner
    from rustlab.inference.loading import build_model_from_checkpoint

    model, meta = build_model_from_checkpoint(checkpoint)
    runner = onnx_runner(checkpoint, model, meta, threads=1)
    size = int(meta["preprocessing"]["image_size"])
    x = torch.randn(3, 3, size, size)
    with torch.inference_mode():
        torch.testing.assert_close(runner(x), model(x), rtol=1e-4, atol=1e-4)
