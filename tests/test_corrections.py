"""Corrections files: labels checked by eye, honoured by every command, never written into the source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import run_cli, train_tiny, write_collector


def _tree_digest(root: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture()
def collector(tmp_path) -> Path:
    return write_collector(tmp_path / "site-a", seed=3, count=20, size=48)


def test_folder_corrections_beside_source_relabel_and_exclude_keeping_splits(collector):
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits

    before = load_source(str(collector))
    splits_before = assign_splits(before, seed=0)
    digest = _tree_digest(collector)
    (collector.parent / "site-a.corrections.csv").write_text(
        "file,label,reason\nrust/rust_0.png,steel,red paint not rust\nsteel/steel_1.png,exclude,no steel in view\n")
    after = load_source(str(collector))
    assert _tree_digest(collector) == digest  # the publisher's files are never rewritten
    by_key = {Path(e.key).name: e for e in after.examples}
    assert after.class_names[by_key["rust_0.png"].label] == "steel"
    assert "steel_1.png" not in by_key
    assert after.corrections["relabelled"] == 1 and after.corrections["excluded"] == 1
    assert after.fingerprint() != before.fingerprint()  # the checkpoint's data fingerprint sees it
    splits_after = assign_splits(after, seed=0)
    for name, examples in splits_before.items():  # no other photo moved between splits
        assert [Path(e.key).name for e in examples if Path(e.key).name != "steel_1.png"] == \
            [Path(e.key).name for e in splits_after[name]]


def test_corrections_folder_by_source_name_and_none(collector, tmp_path):
    from rustlab.data.sources import load_source

    folder = tmp_path / "corrections"
    folder.mkdir()
    (folder / "site-a.csv").write_text("file,label,reason\nsteel/steel_2.png,exclude,blurred\n")
    assert len(load_source(str(collector), corrections=str(folder)).examples) == 39
    assert len(load_source(str(collector), corrections="none").examples) == 40
    (folder / "other.csv").unlink(missing_ok=True)
    assert load_source(str(collector), corrections=str(tmp_path)).corrections is None  # no site-a.csv there


def test_one_file_for_several_sources_by_source_column(collector, tmp_path):
    from rustlab.data.sources import load_source

    other = write_collector(tmp_path / "site-b", seed=4, count=6, size=48)
    marks = tmp_path / "marks.csv"
    marks.write_text("source,file,label,reason\nsite-a,rust/rust_3.png,exclude,x\nsite-b,rust/rust_1.png,steel,y\n")
    assert len(load_source(str(collector), corrections=str(marks)).examples) == 39
    b = load_source(str(other), corrections=str(marks))
    assert b.corrections["relabelled"] == 1 and len(b.examples) == 12


@pytest.mark.parametrize("body, message", [
    ("file,label,reason\nrust/nope.png,exclude,gone\n", "rust/nope.png is not a photo of --data"),
    ("file,label,reason\nrust/rust_0.png,copper,x\n", "label 'copper' is not one of"),
    ("file,label,reason\nrust/rust_0.png,exclude,a\nrust/rust_0.png,steel,b\n", "corrected twice"),
    ("name,class\nrust/rust_0.png,steel\n", "expected a CSV header with file,label,reason"),
])
def test_bad_corrections_are_one_line_errors(collector, tmp_path, capsys, body, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(body)
    code, out, err = run_cli(capsys, "train", "--model", "colour-rule", "--data", collector, "--corrections", bad,
                             "--out", tmp_path / "runs", "--name", "bad")
    assert code == 1 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "bad").exists()  # a failed setup leaves no run folder


def test_train_records_corrections_and_evaluate_scores_both_label_sets(collector, tmp_path, capsys):
    from rustlab.checkpoint import read_metadata

    fixes = tmp_path / "fixes.csv"
    rows = "".join(f"rust/rust_{i}.png,steel,test\n" for i in range(8))  # 8 of 20 rust photos relabelled
    fixes.write_text("file,label,reason\n" + rows)
    run = train_tiny("colour-rule", tmp_path / "runs", data=str(collector), corrections=str(fixes), epochs=1)
    meta = read_metadata(run.run_dir / "best.safetensors")
    record = meta["data"]["sources"][0]["corrections"]
    assert record["relabelled"] == 8 and record["file"] == str(fixes)
    code, out, _ = run_cli(capsys, "evaluate", "-c", run.run_dir, "--split", "all", "--json")
    corrected = json.loads(out)
    assert code == 0 and corrected["corrections"]["relabelled"] == 8 and corrected["same_data_as_training"]
    code, out, _ = run_cli(capsys, "evaluate", "-c", run.run_dir, "--split", "all", "--json", "--corrections", "none")
    publisher = json.loads(out)
    assert publisher["corrections"] is None and not publisher["same_data_as_training"]
    assert publisher["n"] == corrected["n"] == 40
    assert publisher["accuracy"] != corrected["accuracy"]  # the same photos scored against other labels
    fixes.rename(tmp_path / "moved.csv")  # the recorded file is gone: a clear error, not a silent switch
    code, _, err = run_cli(capsys, "evaluate", "-c", run.run_dir, "--split", "all")
    assert code == 1 and "trained with --corrections" in err


def test_corrections_file_inside_the_source_folder_is_read_not_taken_for_a_photo(collector):
    from rustlab.data.sources import load_source

    (collector / "corrections.csv").write_text("file,label,reason\nrust/rust_0.png,exclude,blurred\n")
    source = load_source(str(collector))
    assert len(source.examples) == 39 and source.class_names == ["rust", "steel"]
    assert source.corrections["file"] == str(collector / "corrections.csv")
