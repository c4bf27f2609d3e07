"""`rustlab train --init`: site adaptation of the default model (its fitted parts kept, its final
call refitted) and fine-tuning of a stepped model from a checkpoint."""

from __future__ import annotations

import pytest
import torch

from conftest import run_cli


def test_fit_platt_recovers_a_shifted_threshold_and_write_into_applies_it():
    from rustlab_pretrained.adapt import fit_platt, write_into

    g = torch.Generator().manual_seed(0)
    s = torch.randn(400, generator=g) * 3
    truth = 2.0 * s - 3.0  # the site's rust logit: a steeper call, a higher threshold
    is_rust = torch.rand(400, generator=g) < torch.sigmoid(truth)
    a, b, info = fit_platt(s, is_rust)
    assert 1.4 < a < 2.8 and -4.2 < b < -2.0 and info["adapted_on"] == 400
    layer = torch.nn.Linear(4, 2)
    z = torch.randn(5, 4, generator=g)
    with torch.no_grad():
        before = layer(z)
        write_into(layer, 1, a, b)
        after = layer(z)
    torch.testing.assert_close(after[:, 0], before[:, 0])  # the other class's row is unchanged
    torch.testing.assert_close(after[:, 1] - after[:, 0], a * (before[:, 1] - before[:, 0]) + b)
    with pytest.raises(ValueError, match="both kinds"):
        fit_platt(s[:10], torch.ones(10, dtype=torch.bool))


def test_init_default_keeps_every_fitted_part_but_the_final_call(tmp_path, capsys):
    from rustlab.checkpoint import read_metadata, restore_model
    from rustlab.inference.default_model import default_checkpoint

    code, _, err = run_cli(capsys, "train", "--init", "default", "--data", "builtin:48", "--out", str(tmp_path),
                           "--name", "site")
    assert code == 0, err
    adapted, meta = restore_model(tmp_path / "site")
    shipped, _ = restore_model(default_checkpoint())
    assert meta["model"] == "effnet-lite0-cells" and meta["train_args"]["init"] == "default"
    a, b = adapted.state_dict(), shipped.state_dict()
    changed = sorted(k for k in b if not torch.equal(a[k], b[k]))
    assert changed == ["cells.stack.bias", "cells.stack.weight"]
    torch.testing.assert_close(a["cells.stack.weight"][0], b["cells.stack.weight"][0])  # no_rust's row kept
    assert read_metadata(tmp_path / "site")["calibration"]["method"] == "temperature"


def test_init_takes_the_model_from_the_checkpoint(cnn_checkpoint, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--init", "default", "--model", "cnn", "--data", "builtin:48")
    assert code == 2 and "--init takes the model" in err
    code, _, err = run_cli(capsys, "train", "--init", str(tmp_path / "nowhere.safetensors"), "--data", "builtin:48")
    assert code == 1 and "no such checkpoint" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "train", "--init", str(cnn_checkpoint), "--data", "builtin:48", "--epochs", "1",
                           "--out", str(tmp_path), "--name", "tuned")
    assert code == 0, err
    from rustlab.checkpoint import read_metadata

    meta = read_metadata(tmp_path / "tuned")
    assert meta["model"] == "cnn" and meta["train_args"]["init"] == str(cnn_checkpoint)
