"""Checkpoints: safetensors + JSON metadata, atomic, validated, never unpickled."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from rustlab.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from rustlab.inference.loading import build_model_from_checkpoint
from rustlab.errors import CheckpointError
from rustlab.inference.predictor import Predictor


def test_checkpoint_records_what_a_user_needs(cnn_checkpoint):
    meta = read_metadata(cnn_checkpoint)
    assert meta["model"] == "cnn" and meta["task"] == "classification"
    assert meta["class_names"][meta["rust_index"]] == "rust"
    assert meta["preprocessing"]["image_size"] == 32 and len(meta["preprocessing"]["mean"]) == 3
    assert meta["model_config"]["widths"] == [8, 16, 16]
    assert meta["data"]["fingerprint"] and meta["train_args"]["seed"] == 0
    assert "validation" in meta["metrics"] and meta["epoch"] >= 1
    model, _ = build_model_from_checkpoint(cnn_checkpoint)
    state, _ = load_checkpoint(cnn_checkpoint)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_run_folder_is_accepted_as_checkpoint(cnn_run):
    assert read_metadata(cnn_run.run_dir)["model"] == "cnn"


def _copy_with_meta(src, dst, **changes):
    state, meta = load_checkpoint(src)
    meta.pop("path")
    meta.update(changes)
    save_checkpoint(dst, {f"model.{k}": v for k, v in state.items()}, meta)
    return dst


def test_truncated_checkpoint(cnn_checkpoint, tmp_path):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(cnn_checkpoint.read_bytes()[: cnn_checkpoint.stat().st_size // 2])
    with pytest.raises(CheckpointError) as exc:
        Predictor(bad)
    assert "\n" not in str(exc.value) and "cut.safetensors" in str(exc.value)


def test_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"state_dict": Payload()}))
    evil_pt = tmp_path / "evil.pt"
    torch.save({"x": 1}, evil_pt)  # a real torch pickle, also refused
    for path in (evil, evil_pt):
        with pytest.raises(CheckpointError):
            Predictor(path)
    assert not marker.exists()


def test_foreign_safetensors_without_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="without rustlab metadata"):
        read_metadata(path)


def test_unknown_plugin(cnn_checkpoint, tmp_path):
    path = _copy_with_meta(cnn_checkpoint, tmp_path / "x.safetensors", model="someone-elses-net")
    with pytest.raises(CheckpointError, match="not installed"):
        Predictor(path)


def test_config_that_does_not_match_weights(cnn_checkpoint, tmp_path):
    meta = read_metadata(cnn_checkpoint)
    path = _copy_with_meta(cnn_checkpoint, tmp_path / "x.safetensors",
                           model_config={**meta["model_config"], "hidden": 64})
    with pytest.raises(CheckpointError, match="do not match"):
        Predictor(path)


def test_newer_format_version(cnn_checkpoint, tmp_path):
    path = _copy_with_meta(cnn_checkpoint, tmp_path / "x.safetensors")
    state, meta = load_checkpoint(path)
    header = json.dumps({**{k: v for k, v in meta.items() if k != "path"}, "format_version": 99,
                         "rustlab_version": "9.0"})
    save_file({f"model.{k}": v for k, v in state.items()}, str(path), metadata={"rustlab": header})
    with pytest.raises(CheckpointError, match="upgrade rustlab"):
        Predictor(path)


def test_missing_checkpoint():
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Predictor("/no/such/best.safetensors")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a.safetensors"
    save_checkpoint(path, {"model.w": torch.ones(3)}, {"model": "m"})
    # a failing write keeps the old file intact and removes its temp file
    with pytest.raises(Exception):
        save_checkpoint(path, {"model.w": "not a tensor"}, {"model": "m"})
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(path))["model.w"], torch.ones(3))
