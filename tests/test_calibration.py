"""Temperature scaling, ECE and reliability diagrams: in the task, the checkpoint, the Predictor
and `rustlab evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from rustlab.tasks.calibration import (
    TEMPERATURE_BOUNDS,
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    reliability_bins,
    softmax,
    temperature_of,
    top_label,
)
from rustlab.errors import RustlabError
from rustlab.tasks.classification import ClassificationTask


def overconfident_model(n: int, seed: int):
    """A 2-class "model" whose logits are 10x the true log-odds, on data where it is ~75% right.

    Labels are drawn from sigmoid(d), so softmax([0, d]) is calibrated by construction and
    softmax([0, 10 d]) is the same classifier, grossly over-confident. Returns (logits, labels).
    """
    rng = np.random.default_rng(seed)
    d = rng.normal(0.0, 1.9, n)
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-d))).astype(np.int64)
    logits = 10.0 * np.stack([np.zeros(n), d], axis=1)
    return torch.tensor(logits, dtype=torch.float32), torch.tensor(labels)


def test_ece_by_hand():
    # 10 predictions at confidence 0.9, 9 right: perfectly calibrated
    assert expected_calibration_error(np.full(10, 0.9), np.arange(10) < 9) == pytest.approx(0.0)
    # always sure, right half the time: ECE 0.5
    assert expected_calibration_error(np.ones(4), [True, False, True, False]) == pytest.approx(0.5)
    # two bins: 0.6 (2 right of 2: gap 0.4) and 0.95 (1 of 2: gap 0.45), equal weight
    assert expected_calibration_error([0.6, 0.6, 0.95, 0.95], [1, 1, 1, 0]) == pytest.approx(0.425)
    bins = reliability_bins([1 / 15, 1 / 15 + 1e-9, 1.0], [True, True, False])
    assert bins["count"][0] == 1 and bins["count"][1] == 1 and bins["count"][14] == 1  # (i/15, (i+1)/15]
    assert bins["accuracy"][14] == 0.0 and bins["accuracy"][5] is None


def test_temperature_lowers_ece_on_held_out_data_and_keeps_every_label():
    task = ClassificationTask()
    fit_logits, fit_labels = overconfident_model(2000, seed=0)
    test_logits, test_labels = overconfident_model(2000, seed=1)
    accuracy = float((test_logits.argmax(1) == test_labels).float().mean())
    assert 0.70 < accuracy < 0.80

    calibration = task.calibrate(fit_logits, fit_labels, fit_labels == 1)
    assert calibration["method"] == "temperature"
    assert 8.0 < calibration["temperature"] < 12.5  # the x10 it was built with
    assert calibration["nll_after"] < calibration["nll_before"]

    # scored on other data than the fit
    raw = task.new_meter(1)
    calibrated = task.new_meter(1, calibration)
    for meter in (raw, calibrated):
        meter.update(test_logits, test_labels, test_labels == 1)
    raw, calibrated = raw.compute(), calibrated.compute()
    assert raw["ece"] > 0.15
    assert calibrated["ece"] < 0.05
    assert calibrated["ece_uncalibrated"] == pytest.approx(raw["ece"])
    assert calibrated["temperature"] == calibration["temperature"]
    for key in ("accuracy", "precision", "recall", "confusion", "roc_auc"):
        assert calibrated[key] == raw[key]

    meta = {"class_names": ["no_rust", "rust"], "rust_index": 1}
    before = task.interpret(test_logits, meta)
    after = task.interpret(test_logits, {**meta, "calibration": calibration})
    assert [r["label"] for r in before] == [r["label"] for r in after]
    assert max(r["confidence"] for r in after) < max(r["confidence"] for r in before)
    t = calibration["temperature"]
    assert after[0]["confidence"] == pytest.approx(float((test_logits[0] / t).softmax(0).max()), abs=1e-6)


def test_no_temperature_changes_a_label():
    rng = np.random.default_rng(3)
    logits = np.concatenate([rng.normal(0, 5, (500, 3)), rng.normal(0, 1e-4, (50, 3)),  # near-ties
                             rng.normal(0, 60, (50, 3))])  # saturated softmax
    meta = {"class_names": ["a", "rust", "c"], "rust_index": 1}
    reference = [r["label"] for r in ClassificationTask().interpret(torch.tensor(logits), meta)]
    for t in (TEMPERATURE_BOUNDS[0], 0.3, 1.7, 12.0, TEMPERATURE_BOUNDS[1]):
        result = ClassificationTask().interpret(torch.tensor(logits), {**meta, "calibration": {"temperature": t}})
        assert [r["label"] for r in result] == reference
        confidence, _ = top_label(logits, np.zeros(len(logits)), t)
        assert np.allclose([r["confidence"] for r in result], confidence, atol=1e-6)


def test_fit_temperature_bounds_and_bad_values():
    right = np.array([[4.0, 0.0], [0.0, 3.0]])
    # no mistakes: the NLL keeps falling as T -> 0; the bound stops it
    assert fit_temperature(right, [0, 1]) == pytest.approx(TEMPERATURE_BOUNDS[0])
    assert fit_temperature(right, [1, 0]) == pytest.approx(TEMPERATURE_BOUNDS[1])
    assert softmax(np.array([[1000.0, 0.0]]))[0, 0] == 1.0  # no overflow
    assert temperature_of(None) == 1.0 and temperature_of({"temperature": 2}) == 2.0
    for bad in (0, -1, "x", float("nan")):
        with pytest.raises(RustlabError):
            temperature_of({"temperature": bad})


def test_reliability_plot_is_a_png(tmp_path):
    from PIL import Image

    logits, labels = overconfident_model(300, seed=2)
    confidence, correct = top_label(logits.numpy(), labels.numpy())
    path = plot_reliability({"uncalibrated": reliability_bins(confidence, correct),
                             "calibrated": reliability_bins(*top_label(logits.numpy(), labels.numpy(), 10.0))},
                            tmp_path / "r.png", title="x")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > img.height


def test_trainer_stores_temperature_and_reports_ece(cnn_run):
    from rustlab.checkpoint import read_metadata

    calibration = read_metadata(cnn_run.run_dir / "best.safetensors")["calibration"]
    assert calibration["method"] == "temperature" and calibration["n"] > 0
    assert TEMPERATURE_BOUNDS[0] <= calibration["temperature"] <= TEMPERATURE_BOUNDS[1]
    test = json.loads((cnn_run.run_dir / "test_metrics.json").read_text())
    assert 0 <= test["ece"] <= 1 and 0 <= test["ece_uncalibrated"] <= 1
    assert test["temperature"] == calibration["temperature"]


def test_predictor_shows_the_calibrated_confidence(cnn_checkpoint, sample_images, tmp_path):
    """The Predictor divides by the checkpoint's temperature; a different T moves the confidence only."""
    from rustlab.checkpoint import load_checkpoint, save_checkpoint
    from rustlab.data.transforms import normalize
    from rustlab.inference.predictor import Predictor

    state, meta = load_checkpoint(cnn_checkpoint)
    meta.pop("path")
    hot = tmp_path / "t3.safetensors"
    save_checkpoint(hot, {f"model.{k}": v for k, v in state.items()}, {**meta, "calibration": {"temperature": 3.0}})
    image = sorted(sample_images.iterdir())[0]
    for path, t in ((cnn_checkpoint, meta["calibration"]["temperature"]), (hot, 3.0)):
        predictor = Predictor(path, device="cpu")
        tensor, _ = predictor.preprocess(image)
        with torch.inference_mode():
            logits = predictor.model(normalize(tensor[None]))[0]
        result = predictor.predict(image)
        assert result.confidence == pytest.approx(float((logits / t).softmax(0).max()), abs=1e-6)
        assert result.label == meta["class_names"][int(logits.argmax())]


def test_evaluate_prints_ece_and_writes_reliability_diagram(cnn_checkpoint, tmp_path, capsys):
    from PIL import Image

    code, out, err = run_cli(capsys, "evaluate", "-c", cnn_checkpoint, "--plots", tmp_path / "plots")
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("expected calibration error"))
    assert "uncalibrated ->" in line and "temperature" in line
    with Image.open(tmp_path / "plots" / "reliability-test.png") as img:
        assert img.format == "PNG"

    code, out, err = run_cli(capsys, "evaluate", "-c", cnn_checkpoint, "--json", "--plots", tmp_path / "j",
                             "--data", "builtin:48", "--split", "all")
    result = json.loads(out)
    assert code == 0 and result["n"] == 48
    assert {"ece", "ece_uncalibrated", "temperature", "reliability"} <= set(result)
    assert sum(result["reliability"]["calibrated"]["count"]) == 48
    assert result["reliability_plot"].endswith("reliability-all-builtin_48.png")
    assert (tmp_path / "j" / "reliability-all-builtin_48.png").is_file()


def test_evaluate_unwritable_plots_folder_is_one_line(cnn_checkpoint, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "evaluate", "-c", cnn_checkpoint, "--plots", blocker / "sub")
    assert code == 1 and err.startswith("error: --plots") and err.count("\n") == 1
