"""`rustlab export --format onnx` and `rustlab predict --onnx`: onnxruntime reproduces PyTorch,
the metadata travels with the model, and ONNX prediction runs without torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import run_cli, tiny_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnxruntime as ort  # noqa: E402

from rustlab.errors import RustlabError  # noqa: E402

# Untrained weights are enough to compare two runtimes; this calibration exercises every knob
# a segmentation checkpoint can carry.
SEG_CALIBRATION = {"area_threshold": 0.3, "area_slope": 3.0, "pixel_threshold": 0.5, "fitted": True}


def _models_of(task: str) -> list[str]:
    from rustlab.registry import list_models

    return [spec.name for spec in list_models() if spec.task == task]


def _checkpoint(model: str, path, calibration=None):
    """A checkpoint of an untrained tiny ``model`` (seeded), as the trainer would write it."""
    from rustlab.checkpoint import save_checkpoint
    from rustlab.data.transforms import MEAN, STD
    from rustlab.registry import get_model_spec

    spec = get_model_spec(model)
    config = spec.make_config(tiny_config(model))
    torch.manual_seed(0)
    net = spec.build(config)
    meta = {"model": model, "task": spec.task, "model_config": dataclasses.asdict(config),
            "class_names": ["no_rust", "rust"], "rust_index": 1,
            "preprocessing": {"image_size": 32, "mean": list(MEAN), "std": list(STD)}}
    if calibration:
        meta["calibration"] = calibration
    return save_checkpoint(path, {f"model.{k}": v for k, v in net.state_dict().items()}, meta)


def _max_diff(onnx_path, model, shape) -> float:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.inference_mode():
        expected = model(x).numpy()
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max())


@pytest.fixture(scope="module")
def cnn_onnx(cnn_checkpoint, tmp_path_factory):
    from rustlab.inference.export import export_onnx

    return export_onnx(cnn_checkpoint, tmp_path_factory.mktemp("onnx") / "cnn.onnx").path


def test_cnn_onnx_matches_pytorch_at_batch_1_and_3(cnn_onnx, cnn_checkpoint):
    from rustlab.inference.loading import build_model_from_checkpoint

    model, _ = build_model_from_checkpoint(cnn_checkpoint)
    for batch in (1, 3):
        assert _max_diff(cnn_onnx, model, (batch, 3, 32, 32)) < 1e-4


def test_onnx_metadata(cnn_onnx, cnn_checkpoint):
    import onnx

    from rustlab.checkpoint import read_metadata

    meta = read_metadata(cnn_checkpoint)
    model = onnx.load(str(cnn_onnx))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["class_names"]) == meta["class_names"]
    assert int(props["rust_index"]) == meta["rust_index"]
    assert json.loads(props["preprocessing"]) == meta["preprocessing"]
    assert float(props["temperature"]) == meta["calibration"]["temperature"]
    assert json.loads(props["calibration"]) == meta["calibration"]
    assert props["model"] == "cnn" and props["task"] == "classification" and props["target"] == "label"
    assert json.loads(props["model_config"]) == meta["model_config"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 32, 32]


def test_predict_onnx_gives_the_checkpoints_predictions(cnn_onnx, cnn_checkpoint, sample_images, capsys):
    code, out, err = run_cli(capsys, "predict", "--onnx", cnn_onnx, "--json", sample_images)
    assert code == 0, err
    onnx_rows = [json.loads(line) for line in out.splitlines()]
    code, out, err = run_cli(capsys, "predict", "--checkpoint", cnn_checkpoint, "--json", sample_images)
    torch_rows = [json.loads(line) for line in out.splitlines()]
    assert len(onnx_rows) == len(torch_rows) == 4
    for a, b in zip(onnx_rows, torch_rows):
        assert (a["source"], a["label"], a["is_rust"]) == (b["source"], b["label"], b["is_rust"])
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)  # calibrated in both
        assert a["image_size"] == b["image_size"]


def test_predict_onnx_does_not_import_torch(cnn_onnx, sample_images):
    code = ("import sys\nfrom rustlab.cli import main\n"
            f"try:\n    main(['predict', '--onnx', {str(cnn_onnx)!r}, {str(sample_images)!r}])\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'datasets'))\n"
            "assert not heavy, heavy[:5]\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 4


def test_predict_takes_at_most_one_model(cnn_onnx, cnn_checkpoint, sample_images, capsys):
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, "--onnx", cnn_onnx, sample_images)
    assert code == 2 and "at most one of --checkpoint and --onnx" in err  # neither: the default model


def test_bad_onnx_files_are_one_line(tmp_path, sample_images, capsys):
    import onnx
    from onnx import TensorProto, helper

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx" * 10)
    foreign = tmp_path / "foreign.onnx"
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2]) for n in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", io[:1], io[1:])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), foreign)
    for path, words in ((garbage, "not a readable ONNX model"), (foreign, "without rustlab metadata"),
                        (tmp_path / "missing.onnx", "no such ONNX model")):
        code, _, err = run_cli(capsys, "predict", "--onnx", path, sample_images)
        assert code == 1 and words in err and err.count("\n") == 1, err


def test_export_cli_and_errors(cnn_checkpoint, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", "-c", tmp_path / "none.safetensors", "--format", "onnx")
    assert code == 1 and err.count("\n") == 1 and "no such checkpoint" in err
    code, _, err = run_cli(capsys, "export", "-c", cnn_checkpoint, "--out", tmp_path / "missing" / "m.onnx")
    assert code == 1 and "does not exist" in err
    code, _, err = run_cli(capsys, "export", "-c", cnn_checkpoint, "--format", "tflite")
    assert code == 2


def test_export_refuses_a_graph_that_differs_from_pytorch(cnn_onnx, cnn_checkpoint):
    """The export-time check: the same architecture with other weights must not pass."""
    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.inference.export import _verify

    model, _ = build_model_from_checkpoint(cnn_checkpoint)
    assert max(_verify(model, cnn_onnx, 32, False, "cnn").values()) < 1e-4
    with torch.no_grad():
        model.classifier[-1].bias.add_(0.5)
    with pytest.raises(RustlabError, match="does not match PyTorch"):
        _verify(model, cnn_onnx, 32, False, "cnn")


@pytest.mark.parametrize("model_name", _models_of("segmentation"))
def test_segmentation_onnx_dynamic_size_and_predictions(model_name, tmp_path, sample_images, capsys):
    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.inference.onnx_runtime import OnnxPredictor
    from rustlab.inference.predictor import Predictor

    checkpoint = _checkpoint(model_name, tmp_path / f"{model_name}.safetensors", SEG_CALIBRATION)
    code, out, err = run_cli(capsys, "export", "-c", checkpoint)
    assert code == 0, err
    onnx_path = checkpoint.with_suffix(".onnx")
    assert "height/width" in out and onnx_path.is_file()

    model, _ = build_model_from_checkpoint(checkpoint)
    for shape in ((1, 3, 32, 32), (2, 3, 45, 27)):  # two H x W, one of them odd
        assert _max_diff(onnx_path, model, shape) < 1e-4

    images = sorted(sample_images.iterdir())
    by_torch = list(Predictor(checkpoint, device="cpu").predict_many(images))
    by_onnx = list(OnnxPredictor(onnx_path, device="cpu").predict_many(images))
    for a, b in zip(by_onnx, by_torch):
        assert (a.label, a.is_rust) == (b.label, b.is_rust)
        assert a.rust_area == pytest.approx(b.rust_area, abs=1e-6)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)
        assert np.allclose(a.mask, b.mask, atol=1e-5)
