"""The speed figures of the docs come from the committed results files, and a figure measured
under contention never replaces a quiet one there (issue 16, item 5)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

DOCS = [ROOT / "docs" / "benchmarks.md", ROOT / "README.md"]
RESULTS = ROOT / "experiments" / "speed"


def test_docs_speed_table_is_the_one_generated_from_experiments_speed():
    from rustlab.bench.speed_table import block, embedded

    found = False
    for path in DOCS:
        if not path.is_file():
            continue
        table = embedded(path.read_text())
        if table is None:
            continue
        found = True
        assert table == block(RESULTS), (
            f"{path.name}'s speed table differs from experiments/speed; refresh it with "
            f"`python -m rustlab.bench.speed_table experiments/speed --write {path.relative_to(ROOT)}`")
    assert found, "docs/benchmarks.md should hold the generated speed table"


def test_the_table_takes_quiet_figures_over_contended_ones():
    from rustlab.bench.speed_table import render

    table = render(RESULTS)
    for line in table.splitlines():
        if "warm predict" in line and "(measured under contention)" not in line:
            # a quiet row was found; it cannot be the one that read 131.9 ms beside another job
            assert "131.9" not in line


def _results(training_others=0.0, predict_others=0.0, help_s=0.06):
    row = {"name": "naive", "kind": "naive", "images_per_s": 100.0, "others_cores": training_others}
    predict = {"model": "cnn", "channels_last": False, "image_size": 96, "path_ms": 4.1, "pil_ms": 3.4,
               "others_cores": predict_others}
    return {"machine": {}, "training": [row], "predict": [predict],
            "startup": {"help_s": help_s, "others_cores": None}}


def test_a_contended_run_goes_beside_the_quiet_results(tmp_path):
    from rustlab.bench.speed_results import (
        CONTENDED_FOLDER,
        spoiled_figures,
        write_results,
    )

    quiet = _results()
    written, kept = write_results(tmp_path, quiet, "quiet")
    assert written == tmp_path and kept == []
    busy = _results(predict_others=0.95)  # another job kept a core busy during the predictions
    assert spoiled_figures(quiet, busy) == ["predict cnn"]
    written, kept = write_results(tmp_path, busy, "busy")
    assert written == tmp_path / CONTENDED_FOLDER and kept == ["predict cnn"]
    assert json.loads((tmp_path / "results.json").read_text()) == quiet  # untouched
    assert (tmp_path / "results.md").read_text() == "quiet\n"
    assert (written / "results.md").read_text() == "busy\n"
    # a quiet rerun replaces the results; so does one that spoils nothing quiet
    written, _ = write_results(tmp_path, _results(help_s=0.05), "rerun")
    assert written == tmp_path and (tmp_path / "results.md").read_text() == "rerun\n"


def test_figures_without_a_meter_reading_count_as_quiet():
    from rustlab.bench.speed_results import figures

    assert figures({"startup": {"help_s": 0.06}, "cache": {"others_cores": 0.3, "images": 1}}) == {
        "startup": False, "cache": True}


def test_contention_marks_in_the_report():
    from rustlab.bench.speed_data import (
        PipelineResult,
        PredictResult,
        SpeedReport,
        add_ratios,
    )
    from rustlab.bench.speed_report import format_report, report_dict
    from rustlab.bench.timing import CONTENDED_CORES

    machine = {"cores": 2, "cpu": "cpu", "torch": "t", "torchvision": "v", "pillow": "p", "python": "3",
               "torch_threads": 2, "torch_interop_threads": 2, "device": "cpu"}
    report = SpeedReport(machine, settings={"model": "cnn", "image_size": 96, "batch_size": 32, "train_images": 9,
                                            "data": "d", "augment": "standard", "steps": 1, "warmup": 0})
    report.training = add_ratios([PipelineResult("naive", 100.0, 32, 0.3, others_cores=0.0),
                                  PipelineResult("rustlab", 120.0, 32, 0.3, others_cores=CONTENDED_CORES + 0.5)])
    report.predict = [PredictResult("cnn", 96, 10, 3.4, 3.9, 4.1, 4.7, 30, 237.8, 16, others_cores=0.0)]
    text = format_report(report)
    assert "| 120.0 * |" in text and "| 100.0 |" in text and "measured under contention" in text
    d = report_dict(report)
    assert [r["contended"] for r in d["training"]] == [False, True]
    assert d["predict"][0]["contended"] is False
    target = next(t for t in d["targets"] if "naive" in t["target"])
    assert target["contended"] is True  # a ratio with a contended side is marked too


@pytest.mark.parametrize("others,expected", [(None, False), (0.0, False), (0.25, False), (0.26, True)])
def test_contention_threshold(others, expected):
    from rustlab.bench.timing import is_contended

    assert is_contended(others) is expected
