"""Test-time flips (rustlab.inference.tta): the average is over views flipped back onto the photo, the mode is
recorded in the checkpoint, and evaluate, predict and ONNX export all apply it (or the override)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli, train_tiny

from rustlab.errors import RustlabError
from rustlab.inference.tta import TTA_MODES, FlipAverage, check_mode, with_test_time_flips


class PositionalModel(torch.nn.Module):
    """Not flip-equivariant: adds a fixed ramp over width and height, so the views differ."""

    def forward(self, x):
        h, w = x.shape[-2:]
        ramp = torch.arange(w, dtype=x.dtype)[None, :] + 10 * torch.arange(h, dtype=x.dtype)[:, None]
        return x[:, :1] + ramp


def test_flip_average_maps_every_view_back_onto_the_photo():
    x = torch.randn(2, 3, 5, 7)
    # an equivariant model (identity): every view flipped back is the photo again
    assert torch.allclose(FlipAverage(torch.nn.Identity(), "hvflip")(x), x)
    # a positional one: the ramp is averaged over its mirror images, the photo stays in place
    model = PositionalModel()
    ramp = model(torch.zeros(1, 3, 5, 7))[0, 0]
    for mode, flips in TTA_MODES.items():
        expected_ramp = (ramp + sum(ramp.flip([d - 2 for d in dims]) for dims in flips)) / (1 + len(flips))
        got = with_test_time_flips(model, mode)(x)
        assert torch.allclose(got, x[:, :1] + expected_ramp, atol=1e-5), mode
    assert with_test_time_flips(model, "none") is model


def test_modes_are_checked_against_the_task():
    from rustlab.config import TTA_MODE_NAMES

    assert tuple(TTA_MODES) == TTA_MODE_NAMES  # the CLI's choices are the modes that exist
    assert check_mode("hvflip", dense_output=True) == "hvflip"
    assert check_mode("none", dense_output=False) == "none"
    with pytest.raises(RustlabError, match="per-pixel"):
        check_mode("hflip", dense_output=False)
    with pytest.raises(RustlabError, match="expected one of"):
        check_mode("rot90", dense_output=True)


@pytest.fixture(scope="module")
def unet_tta_run(tmp_path_factory):
    return train_tiny("unet", tmp_path_factory.mktemp("tta"), epochs=1, tta="hvflip").run_dir


def test_the_checkpoint_records_the_mode_and_loaders_apply_it(unet_tta_run, sample_images):
    from rustlab.checkpoint import read_metadata
    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.inference.predictor import Predictor

    ckpt = unet_tta_run / "best.safetensors"
    assert read_metadata(ckpt)["tta"] == "hvflip"
    wrapped, meta = build_model_from_checkpoint(ckpt)
    plain, plain_meta = build_model_from_checkpoint(ckpt, tta="none")
    assert isinstance(wrapped, FlipAverage) and meta["tta"] == "hvflip"
    assert not isinstance(plain, FlipAverage) and plain_meta["tta"] == "none"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        manual = sum(plain(x.flip(d)).flip(d) if d else plain(x) for d in ([], [3], [2], [2, 3])) / 4
        assert torch.allclose(wrapped(x), manual, atol=1e-5)
    assert isinstance(Predictor(ckpt, device="cpu").model, FlipAverage)
    assert not isinstance(Predictor(ckpt, device="cpu", tta="none").model, FlipAverage)


def test_evaluate_reports_the_mode_and_takes_an_override(unet_tta_run, capsys):
    code, out, err = run_cli(capsys, "evaluate", "-c", unet_tta_run, "--json", "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["tta"] == "hvflip"
    code, out, err = run_cli(capsys, "evaluate", "-c", unet_tta_run, "--json", "--device", "cpu", "--tta", "none")
    assert code == 0, err
    assert json.loads(out)["tta"] == "none"


def test_a_classifier_refuses_flips_in_one_line(tmp_path, cnn_checkpoint, sample_images, capsys):
    code, _, err = run_cli(capsys, "train", "--model", "cnn", "--data", "builtin:48", "--epochs", "1",
                           "--tta", "hflip", "--out", tmp_path, "--device", "cpu")
    assert code != 0 and "per-pixel" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before a run folder was made
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, "--tta", "hvflip", sample_images)
    assert code != 0 and "per-pixel" in err and "Traceback" not in err


def test_onnx_export_keeps_the_flips_in_the_graph(unet_tta_run, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnx

    from rustlab.inference.export import export_onnx

    result = export_onnx(unet_tta_run / "best.safetensors", tmp_path / "u.onnx")  # verifies parity itself
    assert max(result.max_abs_diff.values()) < 1e-4
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert props["tta"] == "hvflip"
