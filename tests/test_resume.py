"""Interrupted training: SIGKILL / SIGINT / SIGTERM, `rustlab train --resume`, atomic state files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY, assert_same_checkpoints, run_cli

# builtin:96 at 32 px: ~0.1 s per epoch on 2 cores, long enough to land a signal mid-run. The
# light augmentation (random crops and flips) keeps randomness in play at a tenth of the cost of
# the standard one's colour jitter.
ARGS = ["--model", "cnn", "--data", "builtin:96", "--batch-size", "16", "--seed", "3", "--device", "cpu",
        "--augment", "light", "--set", "widths=[8,16,16]", "--set", "hidden=32", "--set", "image_size=32"]


def _rustlab(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rustlab", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _state_epoch(run_dir: Path) -> int:
    """Epoch of the run's training state (-1 while there is none); reads never see half a file."""
    from rustlab.training.state import STATE_NAME, load_train_state

    if not (run_dir / STATE_NAME).exists():
        return -1
    return load_train_state(run_dir).progress.epoch


def _wait_for_epoch(proc, run_dir: Path, epoch: int, timeout: float = 90) -> float:
    deadline = time.monotonic() + timeout
    while _state_epoch(run_dir) < epoch:
        if proc.poll() is not None:
            pytest.fail(f"training ended before epoch {epoch} was saved: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no epoch {epoch} within {timeout}s")
        time.sleep(0.005)
    return time.monotonic()


def _rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_close_tree(a, b, rel=1e-5, abs_=1e-7, where="result"):
    """Nested dicts/lists equal, floats within tolerance."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a.keys() ^ b.keys())}"
        for k in a:
            assert_close_tree(a[k], b[k], rel, abs_, f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close_tree(x, y, rel, abs_, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=rel, abs=abs_), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _assert_every_file_is_whole(run_dir: Path):
    """Every .safetensors in the folder loads completely (atomic writes: never half a file)."""
    from safetensors.torch import load_file

    from rustlab.checkpoint import read_metadata
    from rustlab.training.state import load_train_state

    files = sorted(run_dir.glob("*.safetensors"))
    assert files
    for path in files:
        assert load_file(str(path))  # every tensor readable
        if path.name == "train_state.safetensors":
            load_train_state(run_dir)
        else:
            read_metadata(path)


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path, capsys):
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    epochs = 6
    reference = train(TrainConfig(model="cnn", data="builtin:96", epochs=epochs, batch_size=16, seed=3, device="cpu",
                                  augment="light", out=str(tmp_path), name="reference", model_config=dict(TINY["cnn"])),
                      log=lambda *_: None)

    run_dir = tmp_path / "killed"
    proc = _rustlab("train", *ARGS, "--epochs", epochs, "--out", tmp_path, "--name", "killed")
    t1 = _wait_for_epoch(proc, run_dir, 1)
    t2 = _wait_for_epoch(proc, run_dir, 2)
    time.sleep((t2 - t1) / 2)  # about the middle of epoch 3
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close(), proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    saved = _state_epoch(run_dir)
    assert 2 <= saved < epochs and not (run_dir / "test_metrics.json").exists(), "the kill missed the training"
    _assert_every_file_is_whole(run_dir)

    code, _, err = run_cli(capsys, "train", "--resume", run_dir)
    assert code == 0, err
    assert f"resuming after epoch {saved}" in err
    assert not list(run_dir.glob(".*.tmp")), "a temp file of the killed write was left behind"
    _assert_every_file_is_whole(run_dir)

    # Same seed on CPU: the resumed run is the uninterrupted one (float tolerance for the
    # thread pool's reduction order; measured: identical to the last bit).
    assert_close_tree(_rows(run_dir), _rows(reference.run_dir))
    assert_close_tree(json.loads((run_dir / "test_metrics.json").read_text()),
                      json.loads((reference.run_dir / "test_metrics.json").read_text()))
    assert_same_checkpoints(run_dir, reference.run_dir)


def test_sigint_and_sigterm_save_state_and_say_how_to_resume(tmp_path):
    """Ctrl-C (SIGINT) and SIGTERM (e.g. a cluster's scheduler): stop after the current step,
    keep the last completed epoch, exit 130 / 143 with the command that resumes (both runs at
    once to share the start-up time)."""
    conf = tmp_path / "run.toml"
    conf.write_text("epochs = 60\npatience = 1000\n")  # long enough to be interrupted, no early stop
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        name = sig.name.lower()
        runs[sig] = (tmp_path / name, _rustlab("train", *ARGS, "--config", conf, "--out", tmp_path, "--name", name))
    for sig, (run_dir, proc) in runs.items():
        _wait_for_epoch(proc, run_dir, 1)
        proc.send_signal(sig)
    for sig, (run_dir, proc) in runs.items():
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{sig.name} did not stop training within 60 s")
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
        assert err.strip().splitlines()[-1] == f"interrupted; resume with: rustlab train --resume {run_dir}"
        assert "Traceback" not in err
        saved = _state_epoch(run_dir)
        assert 1 <= saved < 60
        _assert_every_file_is_whole(run_dir)
        assert not list(run_dir.glob(".*.tmp"))
        assert len(_rows(run_dir)) == saved  # metrics.jsonl holds exactly the saved epochs


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    import pickle

    from conftest import train_tiny

    done = train_tiny("cnn", tmp_path, epochs=1, name="done").run_dir

    code, _, err = run_cli(capsys, "train", "--resume", done, "--epochs", "5")
    assert code == 2 and "drop --epochs" in err
    code, _, err = run_cli(capsys, "train", "--resume", done)
    assert code == 1 and "finished" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path / "nowhere")
    assert code == 1 and "no such run folder" in err
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path)
    assert code == 1 and "no train_state.safetensors" in err

    state = done / "train_state.safetensors"
    state.write_bytes(state.read_bytes()[:1000])
    code, _, err = run_cli(capsys, "train", "--resume", done)
    assert code == 1 and "damaged training state" in err and err.count("\n") == 1

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    state.write_bytes(pickle.dumps({"optimizer": Payload()}))
    code, _, err = run_cli(capsys, "train", "--resume", done)
    assert code == 1 and "damaged training state" in err
    assert not marker.exists()


def test_kill_during_a_checkpoint_write_leaves_the_previous_file_whole(tmp_path):
    """SIGKILL while a 32 MB checkpoint is being rewritten in a loop: the file on disk is always a
    complete earlier version (temp file + fsync + rename), and resume removes the temp file."""
    from safetensors.torch import load_file

    from rustlab.training.state import remove_stale_temp_files

    target = tmp_path / "last.safetensors"
    code = (
        "import sys, torch\n"
        "from rustlab.checkpoint import save_checkpoint\n"
        "i = 0\n"
        "while True:\n"
        "    w = torch.full((8_000_000,), float(i))\n"
        "    save_checkpoint(sys.argv[1], {'model.w': w}, {'model': 'm', 'epoch': i})\n"
        "    if i == 0:\n"
        "        print('ready', flush=True)\n"
        "    i += 1\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.kill()
    proc.wait(timeout=30)
    proc.stdout.close()
    w = load_file(str(target))["model.w"]
    assert w.numel() == 8_000_000 and bool((w == w[0]).all())  # one whole version, not a mix
    remove_stale_temp_files(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]


def test_stop_event_stops_a_training_thread(tmp_path):
    """A GUI stops training the same way, from a thread (no signal handlers there)."""
    import threading

    from rustlab.config import TrainConfig
    from rustlab.errors import Interrupted
    from rustlab.training.trainer import train

    stop = threading.Event()
    outcome = {}

    def log(message):
        if message.startswith("epoch 1/"):
            stop.set()

    def run():
        try:
            train(TrainConfig(model="cnn", data="builtin:96", epochs=50, batch_size=16, device="cpu", augment="none",
                              out=str(tmp_path), name="gui", model_config=dict(TINY["cnn"])), log=log, stop_event=stop)
        except Interrupted as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert isinstance(outcome.get("error"), Interrupted)
    assert "--resume" in str(outcome["error"])
    assert 1 <= _state_epoch(tmp_path / "gui") < 50
    assert os.path.isfile(tmp_path / "gui" / "last.safetensors")


def test_a_second_signal_quits_at_once_but_an_echo_does_not(monkeypatch):
    """torchrun forwards the terminal's Ctrl-C to workers that already got it: a repeat within a
    second is that echo; a later one is the user insisting."""
    from rustlab.training import state as train_state

    clock = iter([100.0, 100.01, 102.0])
    monkeypatch.setattr(train_state.time, "monotonic", lambda: next(clock))
    before = signal.getsignal(signal.SIGINT)
    with train_state.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, caught by the handler
        time.sleep(0.05)  # the Python-level handler runs here at the latest
        assert stop.requested and stop.exit_code == 130
        os.kill(os.getpid(), signal.SIGINT)  # the echo, 10 ms later: ignored
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # 2 s later: quit now
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
