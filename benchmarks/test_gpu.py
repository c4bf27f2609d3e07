"""The GPU path (issue 16, item 4): train one epoch and predict on CUDA with AMP, and
`rustlab bench speed --device cuda` with its CUDA options. Skipped cleanly where torch sees no
CUDA device (every CPU machine, CI); `make test` runs it in smoke mode like the rest of benchmarks/.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def _smoke(model: str) -> dict:
    from rustlab.registry import get_model_spec

    return dict(get_model_spec(model).smoke_config)


def _registered() -> list[str]:
    from rustlab.registry import list_models

    return [spec.name for spec in list_models()]


@cuda_only
@pytest.mark.parametrize("model", _registered())
def test_train_one_epoch_and_predict_on_cuda_with_amp(tmp_path, model):
    """Every registered model (tiny config), as the registry-wide CPU tests in tests/ do."""
    from rustlab.config import TrainConfig
    from rustlab.inference.predictor import Predictor
    from rustlab.training.trainer import train

    cfg = TrainConfig(model=model, data="builtin:48", epochs=1, batch_size=16, device="cuda", amp=True,
                      model_config=_smoke(model), out=str(tmp_path), name="gpu")
    result = train(cfg, log=lambda *_: None)
    predictor = Predictor(result.run_dir / "best.safetensors", device="cuda")
    assert predictor.device.type == "cuda"
    from rustlab.bench.speed_predict import sample_jpegs

    images = sample_jpegs("builtin", tmp_path, count=4, size=64)
    predictions = list(predictor.predict_many(images, batch_size=2))
    assert len(predictions) == 4
    for p in predictions:
        assert 0.0 <= p.rust_probability <= 1.0


@cuda_only
def test_bench_speed_on_cuda(tmp_path, capsys):
    from rustlab.cli import main

    args = ["bench", "speed", "--device", "cuda", "--data", "builtin:48", "--only", "train", "--only", "predict",
            "--steps", "2", "--warmup", "1", "--repeats", "1", "--workers", "0,1", "--batch-size", "8",
            "--image-size", "32", "--amp", "--pin-memory", "--out", str(tmp_path)]
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["machine"]["device"] == "cuda" and report["machine"].get("gpu")
    assert report["settings"]["amp"] is True and report["settings"]["pin_memory"] is True
    assert all(row["gpu_memory_mib"] > 0 for row in report["training"])
    assert all(p["batch_ms"] and p["gpu_memory_mib"] > 0 for p in report["predict"])


def test_cuda_flags_are_plumbed_on_the_cpu(tmp_path, capsys):
    """Without a GPU the same flags still parse, reach the bench and land in the command line."""
    from rustlab.cli import main

    args = ["bench", "speed", "--device", "cpu", "--data", "builtin:48", "--only", "train", "--steps", "1",
            "--warmup", "0", "--repeats", "1", "--workers", "0", "--layout", "contiguous", "--batch-size", "8",
            "--image-size", "32", "--no-amp", "--no-pin-memory", "--out", str(tmp_path)]
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["settings"]["amp"] is False and report["settings"]["pin_memory"] is False
    assert "--no-amp" in report["command"] and "--no-pin-memory" in report["command"]
    assert all(row["gpu_memory_mib"] is None and row["compiled"] is False for row in report["training"])


def test_compile_rows_are_named_and_paired_with_their_bound():
    from rustlab.bench.speed import training_plan
    from rustlab.bench.speed_data import PipelineResult, add_ratios

    plan = training_plan(workers=(0,), channels_last=(False,), compile_modes=(False, True))
    assert plan == [("naive", {}), ("rustlab", {"workers": 0, "channels_last": False}),
                    ("bound", {"channels_last": False}),
                    ("rustlab", {"workers": 0, "channels_last": False, "compiled": True}),
                    ("bound", {"channels_last": False, "compiled": True})]
    rows = add_ratios([PipelineResult("naive", 10.0, 1, 1.0), PipelineResult("rustlab", 20.0, 1, 1.0),
                       PipelineResult("bound", 40.0, 1, 1.0), PipelineResult("rustlab", 30.0, 1, 1.0, compiled=True),
                       PipelineResult("bound", 60.0, 1, 1.0, compiled=True)])
    assert [r.name for r in rows] == ["naive", "rustlab workers=0", "bound", "rustlab compiled workers=0",
                                      "bound compiled"]
    assert rows[1].vs_bound == 0.5 and rows[3].vs_bound == 0.5  # each against the bound of its own kind
