"""Predictor, `rustlab predict` and `rustlab evaluate`, including unreadable inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import run_cli
from PIL import Image

from rustlab.errors import ImageError
from rustlab.inference.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(cnn_checkpoint):
    return Predictor(cnn_checkpoint, device="cpu")


def test_predictor_path_pil_and_bytes_agree(predictor, sample_images):
    path = sorted(sample_images.iterdir())[0]
    a = predictor.predict(path)
    b = predictor.predict(Image.open(path))
    c = predictor.predict(path.read_bytes())
    assert a.label in predictor.class_names and 0.5 <= a.confidence <= 1
    assert a.label == b.label == c.label
    assert a.rust_probability == pytest.approx(b.rust_probability, abs=1e-6)
    assert sum(a.probabilities.values()) == pytest.approx(1.0)
    assert a.is_rust == (a.label == "rust")


def test_predictor_matches_training_preprocessing(predictor, cnn_run):
    """The Predictor's pixels are the trainer's pixels: same outputs as on the decoded store."""
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.data.transforms import normalize

    source = load_source("builtin:96")
    ex = assign_splits(source, seed=0)["test"][0]
    decoded = load_decoded([ex], 32)
    temperature = (predictor.meta.get("calibration") or {}).get("temperature", 1.0)
    with torch.inference_mode():
        logits = predictor.model(normalize(decoded.images)) / temperature
        expected = logits.softmax(1)[0, predictor.meta["rust_index"]]
    got = predictor.predict(ex.image, name=ex.key).rust_probability
    assert got == pytest.approx(float(expected), abs=1e-6)


def test_predict_many_keeps_order_and_reports_bad_files(predictor, sample_images, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is text")
    good = sorted(sample_images.iterdir())
    results = list(predictor.predict_many([good[0], bad, good[1], tmp_path / "missing.png"], batch_size=2))
    assert [type(r).__name__ for r in results] == ["Prediction", "ImageError", "Prediction", "ImageError"]
    assert results[1].path.endswith("notes.jpg") and results[3].reason == "no such file"


def test_predict_cli_lines_and_exit_codes(cnn_checkpoint, sample_images, tmp_path, capsys):
    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, sample_images)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 4
    assert all(line.split()[0] in ("rust", "no_rust") and 0 <= float(line.split()[1]) <= 1 for line in lines)

    (tmp_path / "empty.png").write_bytes(b"")
    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, sample_images, tmp_path / "empty.png")
    assert code == 3
    assert len(out.strip().splitlines()) == 4
    assert "empty.png" in err and "Traceback" not in err

    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, tmp_path / "empty.png")
    assert code == 1


def test_predict_json(cnn_checkpoint, sample_images, capsys):
    code, out, _ = run_cli(capsys, "predict", "-c", cnn_checkpoint, "--json", sample_images)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 4
    assert {"source", "label", "confidence", "rust_probability", "seconds"} <= set(rows[0])


def test_predict_bad_checkpoint_is_one_line(tmp_path, sample_images, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    code, _, err = run_cli(capsys, "predict", "-c", bad, sample_images)
    assert code == 1 and err.count("\n") == 1 and "bad.safetensors" in err


def test_evaluate_reproduces_trainer_test_metrics(cnn_run, capsys):
    code, out, err = run_cli(capsys, "evaluate", "-c", cnn_run.run_dir / "best.safetensors", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["same_data_as_training"] is True
    for key in ("accuracy", "f1", "roc_auc", "n"):
        assert result[key] == pytest.approx(cnn_run.test_metrics[key])
    assert result["confusion"] == cnn_run.test_metrics["confusion"]


def test_evaluate_table_several_sets_and_split_all(cnn_checkpoint, capsys):
    code, out, err = run_cli(capsys, "evaluate", "-c", cnn_checkpoint, "--data", "builtin:96", "--data",
                             "builtin:48", "--split", "all")
    assert code == 0, err
    assert "builtin:96" in out and "builtin:48" in out and "confusion" in out
    row = next(line for line in out.splitlines() if line.startswith("builtin:96"))
    assert row.split()[-1] == "96"


def test_evaluate_bad_split(cnn_checkpoint, capsys):
    code, _, err = run_cli(capsys, "evaluate", "-c", cnn_checkpoint, "--split", "bogus")
    assert code == 2 and "bogus" in err


def test_help_does_not_import_torch():
    code = ("import sys; from rustlab.cli import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit: pass\n"
            "for cmd in ('train', 'predict', 'evaluate'):\n"
            "    try:\n        cli.main([cmd, '--help'], standalone_mode=False)\n    except SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'datasets' not in sys.modules, 'heavy import'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_image_error_is_one_line(tmp_path):
    from rustlab.data.images import open_rgb

    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ImageError) as exc:
        open_rgb(tmp_path / "x.png")
    assert "\n" not in str(exc.value) and "x.png" in str(exc.value)
