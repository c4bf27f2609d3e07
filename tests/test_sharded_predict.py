"""`torchrun --nproc-per-node 2 -m rustlab predict FOLDER --results FILE` (gloo on CPU): each rank
predicts its share into its own part, rank 0 merges them in input order, --resume goes on per part."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from conftest import run_cli


def _torchrun(*args, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RUSTLAB_ENGINE": "torch"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "rustlab", "predict", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_processes_write_parts_and_rank_0_merges_them_in_input_order(cnn_checkpoint, sample_images,
                                                                         tmp_path, capsys):
    from rustlab.inference.pipeline import list_images

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):  # 12 photos: 6 per rank, interleaved
        for src in sorted(sample_images.iterdir()):
            (photos / f"{i}_{src.name}").write_bytes(src.read_bytes())
    (photos / "9_broken.png").write_bytes(b"not an image")
    out = tmp_path / "out.csv"
    proc = _torchrun("-c", str(cnn_checkpoint), str(photos), "--results", str(out))
    # one unreadable photo: rank 0 exits 3 (torchrun reports a failed child: its own exit code is 1)
    assert proc.returncode != 0 and "1 of 13 image(s) could not be read" in proc.stderr, proc.stderr[-3000:]
    assert "merged 13 row(s) of 2 parts" in proc.stderr
    files = list_images([photos])
    merged = _rows(out)
    assert [os.path.abspath(r["source"]) for r in merged] == [os.path.abspath(f) for f in files]
    assert sum(1 for r in merged if r["error"]) == 1
    parts = [_rows(tmp_path / f"out.part{r}-of-2.csv") for r in (0, 1)]
    assert [len(p) for p in parts] == [7, 6]
    # the same answers as one process
    single = tmp_path / "single.csv"
    code, _, _ = run_cli(capsys, "predict", "-c", str(cnn_checkpoint), str(photos), "--results", str(single),
                         "--engine", "torch")
    assert code == 3
    assert [(r["source"], r["label"], r["rust_probability"]) for r in _rows(single)] == \
        [(r["source"], r["label"], r["rust_probability"]) for r in merged]

    # a part cut short (a killed rank) is continued by --resume: only its missing rows are predicted
    part1 = tmp_path / "out.part1-of-2.csv"
    lines = part1.read_text().splitlines(keepends=True)
    part1.write_text("".join(lines[:-2]))
    proc = _torchrun("-c", str(cnn_checkpoint), str(photos), "--results", str(out), "--resume")
    assert "merged 13 row(s) of 2 parts" in proc.stderr, proc.stderr[-3000:]
    assert "--resume: 4 of 6 image(s) already in" in proc.stderr and "--resume: 7 of 7" in proc.stderr
    assert [(r["source"], r["label"], r["rust_probability"]) for r in _rows(out)] == \
        [(r["source"], r["label"], r["rust_probability"]) for r in merged]


def test_under_torchrun_a_results_file_is_needed(cnn_checkpoint, sample_images, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    code, _, err = run_cli(capsys, "predict", "-c", str(cnn_checkpoint), str(sample_images))
    assert code == 1 and "under torchrun, give --results" in err
