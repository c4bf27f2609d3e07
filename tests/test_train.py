"""The trainer: run folder, best-by-validation, reproducibility, flags."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, train_tiny


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_folder_contents(cnn_run):
    names = {p.name for p in cnn_run.run_dir.iterdir()}
    assert {"config.json", "metrics.jsonl", "test_metrics.json", "curves.png", "best.safetensors",
            "last.safetensors"} <= names
    rows = _rows(cnn_run.run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy", "val_roc_auc", "lr"} <= set(rows[0])
    test = json.loads((cnn_run.run_dir / "test_metrics.json").read_text())
    assert test["split"] == "test" and 0 <= test["accuracy"] <= 1 and test["n"] > 0


def test_best_checkpoint_is_chosen_by_validation_metric(cnn_run):
    from rustlab.checkpoint import read_metadata

    rows = _rows(cnn_run.run_dir)
    best = read_metadata(cnn_run.run_dir / "best.safetensors")
    best_acc = max(r["val_accuracy"] for r in rows)
    assert best["metrics"]["validation"]["accuracy"] == pytest.approx(best_acc)
    assert read_metadata(cnn_run.run_dir / "last.safetensors")["epoch"] == rows[-1]["epoch"]


def test_same_seed_same_result_on_cpu(tmp_path):
    a = train_tiny("cnn", tmp_path, name="a", seed=5)
    b = train_tiny("cnn", tmp_path, name="b", seed=5)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(_rows(a.run_dir)) == strip(_rows(b.run_dir))
    c = train_tiny("cnn", tmp_path, name="c", seed=6)
    assert strip(_rows(a.run_dir)) != strip(_rows(c.run_dir))


def test_tiny_cnn_learns_builtin_data(tmp_path):
    """Not a benchmark: a sanity check that the trainer optimises (chance is 0.5)."""
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    cfg = TrainConfig(model="cnn", data="builtin:240", epochs=8, batch_size=16, out=str(tmp_path), device="cpu",
                      model_config={"widths": [16, 32, 32], "hidden": 32, "image_size": 48})
    run = train(cfg, log=lambda *_: None)
    assert run.best_metrics["accuracy"] >= 0.7
    assert run.test_metrics["roc_auc"] >= 0.8


def test_early_stopping(tmp_path):
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    cfg = TrainConfig(model="cnn", data="builtin:48", epochs=30, patience=1, lr=1e-9, out=str(tmp_path),
                      model_config={"widths": [4, 4, 4], "hidden": 8, "image_size": 16}, device="cpu")
    run = train(cfg, log=lambda *_: None)
    assert len(run.history) < 30


def test_config_file_and_flags(tmp_path, capsys):
    conf = tmp_path / "run.toml"
    conf.write_text('model = "cnn"\ndata = "builtin:48"\nepochs = 1\nbatch_size = 8\n'
                    '[model_config]\nwidths = [4, 8, 8]\nhidden = 16\nimage_size = 16\n')
    code, _, err = run_cli(capsys, "train", "--config", conf, "--set", "kernel_size=5", "--seed", "3",
                           "--device", "cpu", "--out", tmp_path, "--name", "r")
    assert code == 0, err
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["model_config"]["kernel_size"] == 5 and saved["model_config"]["widths"] == [4, 8, 8]
    assert saved["train_args"]["seed"] == 3 and saved["train_args"]["batch_size"] == 8


@pytest.mark.parametrize("args, message", [
    (["--epochs", "-1"], "--epochs must be >= 1"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--device", "tpu"], "--device tpu"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--set", "kernal_size=3"], "no config key 'kernal_size'"),
    (["--set", "nonsense"], "expected key=value"),
    (["--data", "./nowhere"], "no such file or folder"),
    (["--config", "/no/such.toml"], "no such file"),
])
def test_bad_flags_give_one_line_errors(args, message, tmp_path, capsys):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("CUDA exists here")
    code, out, err = run_cli(capsys, "train", "--data", "builtin:48", "--epochs", "1", "--out", tmp_path, *args)
    assert code != 0
    assert message in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error")]) == 1
    assert list(tmp_path.iterdir()) == []  # no empty run folder left behind


def test_rerun_after_bad_data_keeps_its_name(tmp_path, capsys):
    code, _, _ = run_cli(capsys, "train", "--data", "./nowhere", "--out", tmp_path, "--name", "r")
    assert code == 1
    code, _, err = run_cli(capsys, "train", "--model", "cnn", "--data", "builtin:48", "--epochs", "1",
                           "--image-size", "16", "--device", "cpu", "--out", tmp_path, "--name", "r")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"] and (tmp_path / "r" / "best.safetensors").is_file()


def test_out_folder_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run_cli(capsys, "train", "--data", "builtin:48", "--epochs", "1", "--out", target)
    assert code == 1 and "is a file" in err
