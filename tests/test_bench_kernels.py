"""`rustlab bench kernels`: a --quick run writes every output with numbers that hold up; bad flags are usage errors."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One --quick CNN sweep: 2 kernels x strides 1,2 x pool on,off (s2+pool collapses at 32 px)."""
    from rustlab.cli import main

    out = tmp_path_factory.mktemp("kernels")
    try:
        main(["bench", "kernels", "--quick", "--kernels", "3,5", "--strides", "1,2", "--pool", "on,off",
              "--out", str(out)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out


def test_quick_run_writes_every_output(quick_run):
    from rustlab.bench.kernels_report import OUTPUTS

    code, out = quick_run
    assert code in (0, None)
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    for name in OUTPUTS:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG
    md = (out / "results.md").read_text()
    assert "| k3/s1+pool |" in md and "| k5/s2 |" in md
    # the command written beside the table reproduces the run
    assert "rustlab bench kernels --model cnn --kernels 3,5 --strides 1,2 --pool on,off" in md
    assert "--quick" in md
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == ["k3/s1+pool", "k3/s1", "k3/s2+pool", "k3/s2",
                                          "k5/s1+pool", "k5/s1", "k5/s2+pool", "k5/s2"]
    for r in rows:
        if r["skipped"]:
            continue
        assert r["macs"] == r["counted_macs"]
        assert 0 <= float(r["test_mean"]) <= 1


def _results(out) -> dict:
    data = json.loads((out / "results.json").read_text())
    return {r["label"]: r for r in data["results"]}


def test_quick_run_numbers_hold_up(quick_run):
    _, out = quick_run
    res = _results(out)
    # s2 + pool halves twice per stage: 32 -> 0 before the third stage; skipped with the reason
    for k in (3, 5):
        assert res[f"k{k}/s2+pool"]["analysis"] is None
        assert "does not fit 32px" in res[f"k{k}/s2+pool"]["skipped"]
    measured = {label: r for label, r in res.items() if r["analysis"] is not None}
    assert len(measured) == 6
    for label, r in measured.items():
        a, k = r["analysis"], r["config"]["kernel"]
        assert a["macs"] == a["counted_macs"] > 0
        # r = 1 + sum (k_l - 1) * jump_l, by hand for three convs (and three 2x2 pools)
        expected_rf = {"s1+pool": 7 * k + 1, "s2": 1 + 7 * (k - 1), "s1": 1 + 3 * (k - 1)}[r["scheme"]]
        assert a["rf"] == expected_rf, label
        assert a["erf_init"]["mass_inside"] > 0.999  # the ERF lies inside the theoretical window
        assert r["erf_trained"]["mass_inside"] > 0.999
        assert a["final_map"] == ([16, 32, 32] if r["scheme"] == "s1" else [16, 4, 4])
        assert [s["shape"][1] for s in a["stages"] if s["type"] == "Conv2d"] == {
            "s1+pool": [32, 16, 8], "s2": [16, 8, 4], "s1": [32, 32, 32]}[r["scheme"]]
        lat = r["latency"]
        assert {(x["what"], x["batch"], x["channels_last"]) for x in lat} == {
            ("forward", 1, False), ("forward", 1, True), ("train", 32, False), ("train", 32, True)}
        for x in lat:
            assert 0 < x["min_ms"] <= x["q1_ms"] <= x["median_ms"] <= x["q3_ms"]
            assert x["rounds"] == 1 and (x["others_cores"] is None or 0 <= x["others_cores"])
            assert x["contended"] == (x["others_cores"] is not None and x["others_cores"] > 0.25)
        q = r["quality"]
        assert q["metric"] == "accuracy" and q["epochs"] == 1 and q["seeds"] == [0]
        assert len(q["val"]) == len(q["test"]) == 1 and 0 <= q["test_mean"] <= 1
        assert q["val_std"] is None  # one seed: no std rather than a made-up 0
    # a stride-2 conv computes a quarter of the positions of a stride-1 conv before its pool;
    # the head (linear layers) is the same in both
    for k in (3, 5):
        head = 16 * 4 * 4 * 32 + 32 * 2  # quick widths (8, 16, 16), hidden 32, 2 classes
        pooled, strided = measured[f"k{k}/s1+pool"]["analysis"]["macs"], measured[f"k{k}/s2"]["analysis"]["macs"]
        assert pooled - head == 4 * (strided - head)
    # a bigger kernel costs more and sees more
    assert measured["k5/s1"]["analysis"]["macs"] > measured["k3/s1"]["analysis"]["macs"]


def test_unet_sweeps_kernels_with_a_seconds_budget(tmp_path, capsys):
    from rustlab.bench.kernels_measure import epochs_for_seconds

    code, out, err = run_cli(capsys, "bench", "kernels", "--model", "unet", "--quick", "--kernels", "3",
                             "--seconds", "0.5", "--out", tmp_path)
    assert code == 0, err
    data = json.loads((tmp_path / "results.json").read_text())
    (r,) = data["results"]
    assert r["label"] == "k3" and r["config"]["stride"] is None
    assert r["analysis"]["macs"] == r["analysis"]["counted_macs"]
    assert r["quality"]["metric"] == "iou"
    train_ms = next(x["median_ms"] for x in r["latency"] if x["what"] == "train" and not x["channels_last"])
    assert r["quality"]["epochs"] == epochs_for_seconds(0.5, train_ms, data["settings"]["train_images"])
    assert "| k3 |" in out


def test_epochs_for_seconds():
    from rustlab.bench.kernels_measure import epochs_for_seconds

    # 100 ms steps, 320 images = 10 steps = 1 s per epoch
    assert epochs_for_seconds(30, 100, 320) == 30
    assert epochs_for_seconds(30, 1000, 320) == 3  # 10x slower: 10x fewer epochs
    assert epochs_for_seconds(0.1, 1000, 320) == 1  # always at least one epoch
    assert epochs_for_seconds(1, 100, 10) == 10  # fewer images than a batch: one step per epoch


@pytest.mark.parametrize("args,needle", [
    (["--kernels", "3,x"], "--kernels"),
    (["--kernels", "0"], "--kernels"),
    (["--kernels", "3,,5"], "--kernels"),
    (["--kernels", "3,3"], "given twice"),
    (["--strides", "0"], "--strides"),
    (["--pool", "maybe"], "--pool"),
    (["--epochs", "2", "--seconds", "5"], "either --epochs or --seconds"),
    (["--model", "unet", "--strides", "2"], "no 'stride' knob"),
    (["--model", "unet", "--kernels", "4"], "must be odd"),
    (["--model", "nosuch"], "unknown model"),
    (["--model", "colour-rule"], "no kernel_size"),
    (["--set", "stride=2"], "--set"),
    (["--set", "nosuch=1"], "no config key"),
    (["--image-size", "4"], "--image-size"),
    (["--seeds", "0"], "--seeds"),
])
def test_bad_flags_are_usage_errors(capsys, tmp_path, args, needle):
    code, out, err = run_cli(capsys, "bench", "kernels", "--quick", "--out", tmp_path, *args)
    assert code == 2, err
    assert needle in err
    assert "Traceback" not in err
    assert not (tmp_path / "results.json").exists()


def test_bad_data_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run_cli(capsys, "bench", "kernels", "--quick", "--data", tmp_path / "missing",
                             "--out", tmp_path / "out")
    assert code == 1
    assert err.startswith("error: --data") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_dead_centre_unit_gives_no_erf_rather_than_a_crash():
    """After training, a centre unit whose ReLUs are dead on every sample passes no gradient
    back (seen with k7/s1 on corrosion-cls): the ERF is reported as none, the report still renders."""
    import dataclasses

    import torch

    from rustlab.bench.kernels_data import ERFSummary, KernelConfig
    from rustlab.bench.kernels_measure import erf_summary
    from rustlab.bench.kernels_report import _sigma
    from rustlab.registry import create_model

    model = create_model("cnn", widths=[4, 4, 4], hidden=8, image_size=32)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    erf = erf_summary(model, (1, 3, 32, 32), n_samples=2)
    assert erf.sigma is None and erf.mass_inside is None
    json.dumps(dataclasses.asdict(erf), allow_nan=False)  # strict JSON: no NaN
    assert _sigma(erf) == "none" and _sigma(None) == "-"
    assert ERFSummary((2.0, 4.0), (5, 9), 1.0, 2).sigma == 3.0
    assert KernelConfig(7, 1, False).label == "k7/s1"


def test_a_contended_latency_round_is_timed_again(monkeypatch):
    """Another process taking the CPU during a round: timed again, the quiet round is kept."""
    from rustlab.bench import kernels_measure as kernels
    from rustlab.bench.timing import Timing

    # others_cores: 0.6 and 0.3 are above timing.CONTENDED_CORES (0.25), 0.02 is quiet
    busy = iter([(Timing(1, 0.5, [0.5]), 0.6), (Timing(1, 0.001, [0.001]), 0.02)])
    monkeypatch.setattr(kernels, "timed_round", lambda *a, **k: next(busy))
    lat = kernels.measure_latency("cnn", {"widths": [4, 4, 4], "hidden": 8}, "forward", 1, steps=1, warmup=0,
                                  max_rounds=3)
    assert lat.rounds == 2 and lat.others_cores == 0.02 and lat.median_ms == 1.0 and not lat.contended
    always = iter([(Timing(1, 0.5, [0.5]), 0.6), (Timing(1, 0.4, [0.4]), 0.3)])
    monkeypatch.setattr(kernels, "timed_round", lambda *a, **k: next(always))
    lat = kernels.measure_latency("cnn", {"widths": [4, 4, 4], "hidden": 8}, "forward", 1, steps=1, warmup=0,
                                  max_rounds=2)
    assert lat.rounds == 2 and lat.others_cores == 0.3 and lat.contended  # flagged, never passed off as clean


def test_cores_used_by_other_processes_are_measured():
    import itertools
    import os
    import time

    from rustlab.bench.timing import CpuMeter, timed_round

    if CpuMeter().start is None:
        pytest.skip("no /proc/stat")
    _, others = timed_round(lambda x: time.sleep(0.01) or 1, itertools.repeat(None), steps=25, warmup=0, sync=None)
    assert others is not None and 0 <= others <= os.cpu_count()  # 0.25 s: long enough to be judged
    _, others = timed_round(lambda x: 1, itertools.repeat(None), steps=5, warmup=0, sync=None)
    assert others is None  # microseconds: too short for 10 ms ticks, not judged


def test_short_rounds_get_more_steps():
    """A round of a few milliseconds cannot be judged by /proc/stat's 10 ms ticks: more steps."""
    from rustlab.bench.kernels_measure import measure_latency

    lat = measure_latency("cnn", {"widths": [4, 4, 4], "hidden": 8}, "forward", 1, steps=2, warmup=1,
                          image_size=16, min_round_seconds=0.3)
    assert lat.steps > 2 and lat.warmup == 1
    assert lat.steps * lat.min_ms / 1000 <= 0.3 * 3  # sized from the probe, not unbounded


def test_results_json_holds_every_number_of_the_table(quick_run):
    """The Markdown table and the plots can be redrawn from results.json alone."""
    from rustlab.bench.kernels_report import format_markdown, load_report, write_outputs

    _, out = quick_run
    report = load_report(out / "results.json")
    assert format_markdown(report) + "\n" == (out / "results.md").read_text()
    redrawn = out / "redrawn"
    write_outputs(report, redrawn)
    assert (redrawn / "results.csv").read_text() == (out / "results.csv").read_text()
