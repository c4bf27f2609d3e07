"""`rustlab bench collectors`: a tiny two-source leave-one-collector-out on builtin-derived sources."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, tiny_config, write_collector

from rustlab.bench.collectors_stats import paired_bootstrap


@pytest.fixture(scope="module")
def second_collector(tmp_path_factory):
    """Another collector: synthetic photos in rust/ and steel/ folders, another size and seed."""
    return write_collector(tmp_path_factory.mktemp("collector-b"), seed=11, count=24, size=40)


def test_leave_one_collector_out_matrix_and_resume(second_collector, tmp_path, capsys):
    sets = [f"--set={k}={v}" for k, v in tiny_config("cnn").items()]
    args = ["bench", "collectors", "--model", "cnn", "--data", "builtin:64", "--data", second_collector,
            "--epochs", "1", "--device", "cpu", "--out", tmp_path, *sets]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    report = json.loads((tmp_path / "collectors.json").read_text())
    rows = {(r["role"], r["data"]): r for r in report["rows"]}
    # each source held out in turn and scored whole; then each source's own test split
    held_b = rows[("held-out collector", str(second_collector))]
    assert held_b["n"] == 48  # every image of the collector the models never saw
    assert ("held-out collector", "builtin:64") in rows and ("own test split", "builtin:64") in rows
    for row in rows.values():
        assert 0 <= row["model"]["accuracy"]["mean"] <= 1 and 0 <= row["baseline"]["accuracy"]["mean"] <= 1
        assert row["model"]["specificity"]["mean"] is not None
        gap = row["accuracy_gap"]
        assert gap["low"] <= gap["gap"] <= gap["high"]
    cells = report["cells"]
    without_b = [c for c in cells if c["data"] == str(second_collector) and c["role"] == "held-out collector"]
    assert {c["model"] for c in without_b} == {"cnn", "colour-rule"}
    assert all(c["trained_on"] == ["builtin:64"] for c in without_b)  # never trained on what it scores
    assert (tmp_path / "collectors.png").stat().st_size > 0
    assert "| held-out collector |" in (tmp_path / "collectors.md").read_text()

    # a rerun trains nothing and scores nothing again: every cell is kept on disk
    code, out2, err2 = run_cli(capsys, *args)
    assert code == 0, err2
    assert "training " not in err2 and out2 == out


def test_collectors_needs_two_sources(tmp_path, capsys):
    code, _, err = run_cli(capsys, "bench", "collectors", "--model", "cnn", "--data", "builtin:64",
                           "--out", tmp_path)
    assert code == 1 and "at least two" in err and "Traceback" not in err


def test_paired_bootstrap_interval_covers_a_known_gap():
    model = {f"k{i}": 1.0 if i % 10 < 8 else 0.0 for i in range(400)}  # 80% right
    base = {f"k{i}": 1.0 if i % 10 < 6 else 0.0 for i in range(400)}  # 60% right, on the same images
    gap = paired_bootstrap(model, base)
    assert gap["gap"] == pytest.approx(0.2)
    assert gap["low"] < 0.2 < gap["high"] and gap["high"] - gap["low"] < 0.12
    assert paired_bootstrap(model, {})["n"] == 0


def test_specificity_of_an_all_rust_source_is_undefined_not_zero():
    from rustlab.bench.collectors_stats import summarise

    def cell(model, rows):
        return {"model": model, "role": "held-out collector", "data": "seg", "n": len(rows), "accuracy": 0.5,
                "recall": 0.5, "specificity": 0.0, "f1": 0.67, "roc_auc": None,
                "per_image": [{"key": f"k{i}", "rust": True, "predicted_rust": r} for i, r in enumerate(rows)]}

    [row] = summarise([cell("m", [True, False]), cell("b", [True, True])], "m", "b")
    assert row["model"]["specificity"]["mean"] is None and row["baseline"]["specificity"]["mean"] is None
    assert row["model"]["recall"]["mean"] == 0.5
