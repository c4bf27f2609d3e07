"""The colour-rule baseline plugin: HSV maths, fitting, and the whole stack (checkpoint,
Predictor, evaluate, train) working on a model with no trainable weights."""

from __future__ import annotations

import colorsys
import dataclasses
import json

import pytest
import torch
from conftest import run_cli
from PIL import Image

from rustlab.errors import RustlabError
from rustlab_colour.model import ColourRule, ColourRuleConfig, best_threshold, rgb_to_hsv

ORANGE = (0.70, 0.35, 0.10)  # hue 25 deg, saturation 0.86, value 0.70: rust-coloured
GREY = (0.50, 0.50, 0.52)
BLUE = (0.10, 0.20, 0.70)


def _image(share: float, size: int = 16, rust=ORANGE, background=GREY) -> torch.Tensor:
    """uint8 3 x size x size: the first ``share`` of the pixels (row-major) rust-coloured."""
    img = torch.tensor(background).view(3, 1).repeat(1, size * size)
    n = round(share * size * size)
    img[:, :n] = torch.tensor(rust).view(3, 1)
    return (img.view(3, size, size) * 255).round().to(torch.uint8)


def test_rgb_to_hsv_matches_colorsys():
    rgb = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    rgb[0, :, 0, 0] = 0.4  # grey: hue and saturation 0
    rgb[0, :, 0, 1] = 0.0  # black
    hue, sat, val = rgb_to_hsv(rgb)
    for y in range(9):
        for x in range(9):
            h, s, v = colorsys.rgb_to_hsv(*rgb[0, :, y, x].tolist())
            assert float(hue[0, y, x]) == pytest.approx(h * 360, abs=1e-3)
            assert float(sat[0, y, x]) == pytest.approx(s, abs=1e-5)
            assert float(val[0, y, x]) == pytest.approx(v, abs=1e-6)


@pytest.mark.parametrize("pixel, rusty", [
    (ORANGE, True),
    (GREY, False),  # no saturation
    (BLUE, False),  # hue out of range
    ((0.07, 0.035, 0.01), False),  # orange hue but too dark (value 0.07)
    ((0.80, 0.65, 0.58), False),  # rust hue (19 deg) but pale: saturation 0.275 < 0.3
])
def test_rust_share_per_pixel(pixel, rusty):
    model = ColourRule(ColourRuleConfig(saturation_min=0.3))
    share = model.rust_share(torch.tensor(pixel).view(1, 3, 1, 1).expand(1, 3, 4, 4))
    assert float(share[0]) == (1.0 if rusty else 0.0)


def test_fit_chooses_the_separating_threshold_and_orders_outputs():
    images = torch.stack([_image(s) for s in (0.0, 0.02, 0.05, 0.30, 0.40, 0.60)])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    model = ColourRule(ColourRuleConfig())
    info = model.fit(images, labels, rust_index=1)
    assert info["train_accuracy"] == 1.0
    assert 0.05 < info["threshold"] < 0.30  # between the classes, never on a training image
    probs = model(_normalise(images)).softmax(1)[:, 1]
    assert (probs[:3] < 0.5).all() and (probs[3:] > 0.5).all()
    assert torch.all(probs[1:] >= probs[:-1])  # monotone in the share: ROC-AUC is meaningful


def test_fit_honours_rust_index_and_ignores_unknown_labels():
    images = torch.stack([_image(s) for s in (0.0, 0.05, 0.5, 0.6, 0.9)])
    labels = torch.tensor([1, 1, 0, 0, -1])  # here class 0 is rust; the last image is unlabelled
    model = ColourRule(ColourRuleConfig())
    model.fit(images, labels, rust_index=0)
    assert model(_normalise(images)).argmax(1).tolist() == [1, 1, 0, 0, 0]


def test_fit_needs_both_classes():
    images = torch.stack([_image(0.5), _image(0.6)])
    with pytest.raises(RustlabError, match="both classes"):
        ColourRule(ColourRuleConfig()).fit(images, torch.tensor([1, 1]), rust_index=1)


def test_best_threshold_takes_the_middle_of_equally_good_cuts():
    shares = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.9])
    rust = torch.tensor([False, False, True, False, True])  # cuts at 0.15 and 0.6 both make one error
    assert best_threshold(shares, rust) == pytest.approx(0.6)  # the later of the two best cuts
    assert best_threshold(torch.tensor([0.1, 0.2]), torch.tensor([False, True])) == pytest.approx(0.15)
    # equal shares cannot be split: no cut between the two 0.1s even though their labels differ
    assert best_threshold(torch.tensor([0.1, 0.1, 0.5]), torch.tensor([False, True, True])) == pytest.approx(0.3)


def test_registered_without_trainable_weights_and_binary_only():
    from rustlab.registry import count_parameters, create_model, get_model_spec

    spec = get_model_spec("colour-rule")
    assert spec.task == "classification" and spec.source == "rustlab_colour"
    model = create_model("colour-rule")
    assert count_parameters(model) == 0
    assert {"threshold", "slope", "hue_range", "saturation_min", "value_range"} <= set(model.state_dict())
    with pytest.raises(RustlabError, match="binary"):
        create_model("colour-rule", num_classes=3)
    with pytest.raises(RustlabError, match="hue_min"):
        create_model("colour-rule", hue_min=50)


@pytest.fixture(scope="module")
def fitted_checkpoint(tmp_path_factory):
    """A fitted rule saved with the metadata the trainer writes, as any checkpoint."""
    from rustlab.checkpoint import save_checkpoint
    from rustlab.data.transforms import MEAN, STD

    config = ColourRuleConfig(image_size=16)
    model = ColourRule(config)
    model.fit(torch.stack([_image(s) for s in (0.0, 0.05, 0.5, 0.7)]), torch.tensor([0, 0, 1, 1]), 1)
    path = tmp_path_factory.mktemp("colour") / "best.safetensors"
    save_checkpoint(path, {f"model.{k}": v for k, v in model.state_dict().items()}, {
        "model": "colour-rule", "task": "classification", "model_config": dataclasses.asdict(config),
        "class_names": ["no_rust", "rust"], "rust_index": 1,
        "preprocessing": {"image_size": 16, "mean": list(MEAN), "std": list(STD)},
        "data": {"spec": "builtin:96", "fingerprint": "-"}, "train_args": {"seed": 0}})
    return path, model


def test_checkpoint_round_trip_and_predictor(fitted_checkpoint, tmp_path):
    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.inference.predictor import Predictor

    path, model = fitted_checkpoint
    loaded, _ = build_model_from_checkpoint(path)
    assert float(loaded.threshold) == float(model.threshold) and float(loaded.slope) == float(model.slope)

    for name, share in (("rusty.png", 0.8), ("clean.png", 0.0)):
        Image.fromarray(_image(share, 32).permute(1, 2, 0).numpy()).save(tmp_path / name)
    predictor = Predictor(path, device="cpu")
    rusty, clean = predictor.predict(tmp_path / "rusty.png"), predictor.predict(tmp_path / "clean.png")
    assert rusty.label == "rust" and clean.label == "no_rust"
    assert rusty.rust_probability > 0.5 > clean.rust_probability


def test_evaluate_cli_scores_the_rule_on_several_sets(fitted_checkpoint, capsys):
    path, _ = fitted_checkpoint
    code, out, err = run_cli(capsys, "evaluate", "-c", path, "--data", "builtin:96", "--data", "builtin:48",
                             "--split", "all", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["data"] for r in rows] == ["builtin:96", "builtin:48"] and [r["n"] for r in rows] == [96, 48]
    assert all(0 <= r["accuracy"] <= 1 and r["roc_auc"] is not None for r in rows)


def test_train_fits_the_rule_without_gradient_steps(tmp_path):
    from conftest import train_tiny

    from rustlab.inference.loading import build_model_from_checkpoint

    run = train_tiny("colour-rule", tmp_path, epochs=5)
    assert len(run.history) == 1  # nothing to step: one pass scores the fitted rule
    model, meta = build_model_from_checkpoint(run.run_dir / "best.safetensors")
    assert float(model.threshold) > 0 and meta["model"] == "colour-rule"
    assert run.test_metrics["n"] > 0 and run.test_metrics["accuracy"] > 0.5


def _normalise(images: torch.Tensor) -> torch.Tensor:
    from rustlab.data.transforms import normalize

    return normalize(images)


def test_onnx_export_gives_the_same_calls(fitted_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path, _ = fitted_checkpoint
    for name, share in (("rusty.png", 0.8), ("clean.png", 0.0)):
        Image.fromarray(_image(share, 32).permute(1, 2, 0).numpy()).save(tmp_path / name)
    code, _, err = run_cli(capsys, "export", "-c", path, "-o", tmp_path / "rule.onnx")
    assert code == 0, err
    outputs = []
    for model in (("-c", path), ("--onnx", tmp_path / "rule.onnx")):
        code, out, err = run_cli(capsys, "predict", *model, "--json", tmp_path / "rusty.png", tmp_path / "clean.png")
        assert code == 0, err
        outputs.append([(r["label"], r["rust_probability"]) for r in map(json.loads, out.splitlines())])
    (torch_rows, onnx_rows) = outputs
    assert [label for label, _ in torch_rows] == [label for label, _ in onnx_rows] == ["rust", "no_rust"]
    assert [p for _, p in onnx_rows] == pytest.approx([p for _, p in torch_rows], abs=1e-5)
