"""Folder prediction as a pipeline (rustlab.inference.pipeline, `predict --results/--resume`):
input order with several decode threads, error rows, a results file that survives a crash, resume."""

from __future__ import annotations

import csv
import json
import threading
import time

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from rustlab.errors import ImageError
from rustlab.inference.pipeline import decoded_batches, predict_stream


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """12 small photos (varied sizes, so decode times differ) and two unreadable files."""
    from rustlab.data.synthetic import render_sample

    folder = tmp_path_factory.mktemp("photos")
    for i in range(12):
        image, _ = render_sample(np.random.default_rng([3, i]), 48 + 16 * (i % 4), bool(i % 2))
        Image.fromarray(image).save(folder / f"p{i:02d}.{'jpg' if i % 3 else 'png'}")
    (folder / "p04b.jpg").write_text("not an image\n")
    (folder / "p09b.png").write_bytes(b"")
    return folder


def _sorted_images(folder):
    from rustlab.inference.predictor import list_images

    return list_images([folder])


# --- the pipeline on its own ------------------------------------------------------------------


def test_order_is_kept_whatever_finishes_first():
    """Decode times that decrease along the input: later items finish first, yet come out in order."""
    items = list(range(40))

    def decode(item, name):
        time.sleep(0.002 * (40 - item) / 40)
        if item % 7 == 3:
            raise ImageError(name, "bad")
        return item, (1, 1)

    threads = set()

    def run(arrays):
        threads.add(threading.current_thread().name)
        return [{"label": str(a), "is_rust": False, "confidence": 1.0, "rust_probability": 0.0} for a in arrays]

    out = list(predict_stream([f"f{i}" for i in items], lambda img, name: decode(int(img[1:]), name), run,
                              batch_size=4, workers=3))
    assert [o.path if isinstance(o, ImageError) else o.source for o in out] == [f"f{i}" for i in items]
    assert [o.label for o in out if not isinstance(o, ImageError)] == [str(i) for i in items if i % 7 != 3]
    assert threads == {threading.current_thread().name}  # the model runs on the caller's thread


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_batches_count_only_readable_images(workers):
    def decode(item, name):
        if item in (1, 2):
            raise ImageError(name, "bad")
        return item, (1, 1)

    batches = list(decoded_batches(range(9), lambda img, name: decode(img, name), 3, workers=workers))
    assert [[v if not isinstance(v, ImageError) else "x" for _, v in b] for b in batches] == \
        [[(0, (1, 1)), "x", "x", (3, (1, 1)), (4, (1, 1))], [(5, (1, 1)), (6, (1, 1)), (7, (1, 1))], [(8, (1, 1))]]


def test_window_is_bounded_and_closing_early_cancels_the_rest():
    started = []

    def decode(item, name):
        started.append(item)
        return item, (1, 1)

    stream = decoded_batches(range(10_000), decode, batch_size=4, workers=2, prefetch=10)
    next(stream)
    time.sleep(0.05)
    assert len(started) <= 4 + 10 + 2  # one batch taken, at most the window decoded ahead
    stream.close()
    n = len(started)
    time.sleep(0.05)
    assert len(started) == n  # nothing runs after close


# --- the predictors -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(cnn_checkpoint):
    from rustlab.inference.predictor import Predictor

    return Predictor(cnn_checkpoint, device="cpu")


def test_threads_and_sequential_give_the_same_answers(predictor, folder):
    images = _sorted_images(folder)
    seq = list(predictor.predict_many(images, batch_size=3, workers=0))
    par = list(predictor.predict_many(images, batch_size=3, workers=4, prefetch=5))
    key = [(o.path, o.reason) if isinstance(o, ImageError) else (o.source, o.label, round(o.confidence, 5))
           for o in seq]
    assert key == [(o.path, o.reason) if isinstance(o, ImageError) else (o.source, o.label, round(o.confidence, 5))
                   for o in par]
    assert [o.path for o in seq if isinstance(o, ImageError)] == [str(folder / "p04b.jpg"), str(folder / "p09b.png")]


def test_onnx_predictor_uses_the_pipeline_without_torch(cnn_checkpoint, folder, tmp_path):
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys

    from rustlab.inference.export import export_onnx

    onnx = export_onnx(cnn_checkpoint, tmp_path / "m.onnx").path
    code = ("import sys, json; from rustlab.inference.onnx_runtime import OnnxPredictor; from rustlab.inference.predictor import list_images;"
            f"p = OnnxPredictor({str(onnx)!r}, device='cpu');"
            f"out = list(p.predict_many(list_images([{str(folder)!r}]), batch_size=4, workers=3));"
            "print(json.dumps([getattr(o, 'source', None) or o.path for o in out]));"
            "assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _sorted_images(folder)


# --- the CLI: results file, resume, error rows, exit codes -------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_results_file_rows_in_order_with_error_rows(capsys, cnn_checkpoint, folder, tmp_path, suffix):
    results = tmp_path / f"r{suffix}"
    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", results,
                             "--batch-size", "3", "--workers", "2")
    assert code == 3, err
    rows = _read(results)
    images = _sorted_images(folder)
    assert [r["source"] for r in rows] == images
    errors = {r["source"]: r["error"] for r in rows if r["error"]}
    assert errors == {str(folder / "p04b.jpg"): "not a readable image", str(folder / "p09b.png"): "empty file (0 bytes)"}
    good = [r for r in rows if not r["error"]]
    assert all(r["label"] in ("rust", "no_rust") and 0 <= float(r["confidence"]) <= 1 for r in good)
    assert all(int(r["decoded_width"]) >= 32 and int(r["decoded_height"]) >= 32 for r in good)
    # stdout lists the same predictions, in the same order
    assert [line.split()[-1] for line in out.splitlines()] == [r["source"] for r in good]
    assert "2 of 14 image(s) could not be read" in err


def test_resume_skips_done_files_and_appends(capsys, cnn_checkpoint, folder, tmp_path):
    images = _sorted_images(folder)
    results = tmp_path / "r.csv"
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, *images[:6], "--results", results)
    assert code == 3, err  # p04b.jpg is among the first six
    first = _read(results)
    # an existing file is not overwritten without --resume
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", results)
    assert code == 1 and "--resume" in err
    assert _read(results) == first
    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", results, "--resume")
    assert code == 3, err  # p09b.png fails in the second part
    assert "6 of 14 image(s) already in" in err
    rows = _read(results)
    assert rows[:6] == first and [r["source"] for r in rows] == images
    assert len(out.splitlines()) == 14 - 6 - 1  # only the new predictions are printed
    code, out, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", results, "--resume")
    assert code == 0 and out == "" and "14 of 14" in err
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--resume")
    assert code == 2 and "--results" in err


def test_a_killed_run_keeps_its_rows_and_resume_drops_a_cut_off_line(capsys, cnn_checkpoint, folder, tmp_path,
                                                                     monkeypatch):
    """The model fails on the third batch: the rows of the first two are on disk already."""
    from rustlab.inference.predictor import Predictor

    images = _sorted_images(folder)
    results = tmp_path / "r.jsonl"
    real = Predictor.forward
    calls = []

    def failing(self, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if Ctrl-C or a crash hit mid-stream
        return real(self, batch)

    monkeypatch.setattr(Predictor, "forward", failing)
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", results, "--batch-size", "2")
    assert code == 130
    rows = _read(results)
    assert [r["source"] for r in rows] == images[:len(rows)] and len(rows) >= 4
    # a row cut off by a kill mid-write: dropped on resume and that file predicted again
    with open(results, "a") as fh:
        fh.write('{"source": "' + images[len(rows)] + '", "lab')
    monkeypatch.setattr(Predictor, "forward", real)
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", results, "--resume")
    assert code == 3, err
    assert [r["source"] for r in _read(results)] == images


def test_all_unreadable_is_exit_1_and_bad_results_names(capsys, cnn_checkpoint, folder, tmp_path):
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder / "p04b.jpg", "--results",
                           tmp_path / "r.jsonl")
    assert code == 1 and "1 of 1 image(s) could not be read" in err
    assert _read(tmp_path / "r.jsonl") == [{"source": str(folder / "p04b.jpg"), "error": "not a readable image"}]
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", tmp_path / "r.txt")
    assert code == 1 and "expected a .csv or .jsonl" in err
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, _, err = run_cli(capsys, "predict", "-c", cnn_checkpoint, folder, "--results", other, "--resume")
    assert code == 1 and "columns" in err


def _read(path):
    text = path.read_text()
    if path.suffix == ".csv":
        return [{k: v for k, v in row.items()} for row in csv.DictReader(text.splitlines())]
    rows = [json.loads(line) for line in text.splitlines()]
    return [{**r, "error": r.get("error", "")} for r in rows]


def test_pipeline_setting_is_chosen_by_measured_throughput_and_restored(predictor, folder):
    """Decoding inline is timed first and kept unprobed while decoding is a small share of the
    model's time; otherwise each threaded setting is timed on a few batches and the fastest kept;
    measured again later. The thread count holds inside the forward only: torch's own count is
    the caller's between results, at the end, and when the caller stops early."""
    import torch

    from rustlab.inference.predictor import _PipelineTuner

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tuner = _PipelineTuner(decode_threads=2)
        assert tuner.candidates == [(True, 2), (False, 2), (False, 1)]
        assert tuner.mode.inline and tuner.threads == 2
        done, now = 0, 0.0

        def batches(n, seconds_each, model_each):
            nonlocal done, now
            for _ in range(n):
                now += seconds_each
                done += 16
                tuner(done, model_each, now)

        # a model-bound run: decoding takes 0.1 of the model's 0.9 s, so inline is kept unprobed
        batches(1 + tuner.PROBE, 1.0, 0.9)
        assert tuner.mode.inline and not tuner.probing and tuner.choices == [(True, 2)]
        batches(tuner.HOLD, 1.0, 0.9)
        assert tuner.probing and tuner.mode.inline  # measuring again, inline first
        # now decoding is 4x the model: 16 img/s inline, so the threaded settings are timed
        batches(tuner.PROBE, 1.0, 0.2)
        assert tuner.probing and not tuner.mode.inline and tuner.threads == 2
        batches(1, 9.0, 0.2)  # the first batch after a change is not timed (nothing decoded ahead yet)
        batches(tuner.PROBE, 0.5, 0.2)  # threads ahead + 2 torch threads: 32 img/s
        assert tuner.threads == 1 and torch.get_num_threads() == 2 and not tuner.mode.inline
        batches(1 + tuner.PROBE, 0.8, 0.3)  # threads ahead + 1 torch thread: 20 img/s; the 32 img/s setting kept
        assert tuner.threads == 2 and not tuner.mode.inline and not tuner.probing
        assert tuner.choices == [(True, 2), (False, 2)]
        batches(1 + tuner.HOLD, 0.5, 0.2)
        assert tuner.probing and tuner.mode.inline  # inline again, but files decoded ahead are still in use:
        tuner.mode.pending = 5
        batches(5, 0.1, 0.1)  # such batches are not timed (they would make decoding look free)
        assert tuner.probing and tuner.mode.inline
        tuner.mode.pending = 0
        batches(1 + tuner.PROBE, 1.0, 0.2)  # timed once the window is drained: decoding is not small
        assert tuner.probing and not tuner.mode.inline
        images = _sorted_images(folder) * 3
        from rustlab.inference.predictor import Predictor

        in_torch = Predictor(predictor.checkpoint, device="cpu", engine="torch")  # the tuner is PyTorch's
        seen = {torch.get_num_threads() for _ in in_torch.predict_many(images, batch_size=1, workers=2)}
        assert seen == {2} and torch.get_num_threads() == 2
        stream = in_torch.predict_many(images, batch_size=1, workers=2)
        for _ in range(1 + tuner.PROBE + 1 + tuner.PROBE + 2):  # stop mid-run, perhaps mid-probe
            next(stream)
            assert torch.get_num_threads() == 2
        stream.close()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_inline_decoding_keeps_order_and_uses_the_files_in_flight():
    """Flipping DecodeMode.inline mid-stream: the files already submitted are used, the rest are
    decoded on the calling thread, nothing is lost or reordered, and threads resume on a flip back."""
    import threading

    from rustlab.inference.pipeline import DecodeMode

    mode, where = DecodeMode(), {}

    def decode(image, name):
        where[image] = threading.current_thread().name
        return image

    stream = decoded_batches(range(40), decode, batch_size=4, workers=2, prefetch=6, mode=mode)
    seen = [v for _, v in next(stream)]
    mode.inline = True
    for _ in range(4):
        seen += [v for _, v in next(stream)]
    mode.inline = False
    seen += [v for batch in stream for _, v in batch]
    assert seen == list(range(40))
    inline = [i for i in range(40) if where[i] == threading.current_thread().name]
    assert inline and min(inline) >= 4 and max(inline) < 24  # decoded inline only while the flag was set
    assert where[39].startswith("rustlab-decode")


def test_channels_last_is_decided_per_model_and_changes_no_answer(cnn_checkpoint, folder, monkeypatch):
    import torch

    from rustlab.inference import layout
    from rustlab.config import TrainConfig
    from rustlab.errors import RustlabError
    from rustlab.inference.predictor import Predictor

    assert layout.wants_channels_last(True, "anything", torch.device("cuda")) is True
    assert layout.wants_channels_last("false", "cnn", torch.device("cpu")) is False
    assert layout.wants_channels_last("auto", "no-such-model", torch.device("cpu")) is False
    assert TrainConfig(channels_last="TRUE").channels_last is True
    with pytest.raises(RustlabError, match="channels_last"):
        TrainConfig(channels_last="sometimes").validate()
    images = _sorted_images(folder)
    monkeypatch.setattr(layout, "PREDICT_CPU", frozenset())
    plain = Predictor(cnn_checkpoint, device="cpu")
    monkeypatch.setattr(layout, "PREDICT_CPU", frozenset({"cnn"}))
    nhwc = Predictor(cnn_checkpoint, device="cpu")
    assert nhwc.channels_last and not plain.channels_last
    a = [p for p in plain.predict_many(images, workers=0) if not isinstance(p, ImageError)]
    b = [p for p in nhwc.predict_many(images, workers=0) if not isinstance(p, ImageError)]
    assert [p.label for p in a] == [p.label for p in b]
    assert max(abs(p.rust_probability - q.rust_probability) for p, q in zip(a, b)) < 1e-5
