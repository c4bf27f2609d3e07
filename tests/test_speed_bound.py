"""Folder predict against the 2-core bound (rustlab.bench.speed_bound): the bound's arithmetic,
a real measurement's shape, and the report's table and target. No timing is asserted."""

from __future__ import annotations

import pytest

from rustlab.bench.speed_data import FolderBoundResult, SpeedReport


def test_the_bound_spreads_model_and_decode_core_time_over_the_cores(cnn_checkpoint, sample_images):
    from rustlab.bench.speed_bound import measure_folder_bound
    from rustlab.inference.predictor import Predictor

    images = [str(p) for p in sorted(sample_images.iterdir())] * 2
    assert len(images) >= 8
    images = images[:8]
    row = measure_folder_bound(Predictor(cnn_checkpoint, device="cpu"), "cnn", images, "samples", batch_size=4,
                               rounds=2)
    assert row.images == 8 and len(row.runs) == 2 and row.pipeline_per_s == max(row.runs)
    expected = row.cores / (row.cores / row.model_per_s + 1 / row.decode_per_s)
    assert row.bound_per_s == pytest.approx(expected, rel=1e-2)
    # the bound is below both ceilings: decoding on every core, and the model alone
    assert row.bound_per_s <= min(row.model_per_s, row.cores * row.decode_per_s) + 1e-6


def test_the_report_shows_the_bound_beside_the_pipeline_and_judges_the_target():
    from rustlab.bench.speed_report import check_targets, format_report

    report = SpeedReport({"cores": 2, "cpu": "test", "torch": "2", "torchvision": "0", "pillow": "1", "python": "3",
                          "torch_threads": 2, "torch_interop_threads": 2, "device": "cpu"})
    report.folder = [FolderBoundResult("cnn", "onnxruntime", "web JPEGs", 200, 16, 2, 800.0, 900.0, 568.0, 500.0,
                                       [480.0, 500.0], 0.0),
                     FolderBoundResult("cnn", "onnxruntime", "12 MP JPEGs", 24, 16, 2, 60.0, 850.0, 106.0, 80.0,
                                       [80.0], 0.0)]
    text = format_report(report)
    assert "| cnn (onnxruntime, batch 16) | web JPEGs (200) | 800.0 | 900.0 | 568.0 | 500.0 (480.0, 500.0) | **0.88** |" in text
    met = {t["target"]: t["met"] for t in check_targets(report)}
    assert met == {"cnn folder predict / 2-core bound, web JPEGs": True,
                   "cnn folder predict / 2-core bound, 12 MP JPEGs": False}
    assert report.to_dict()["folder"][1]["of_bound"] == pytest.approx(80 / 106, abs=1e-3)
