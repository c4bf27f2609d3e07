"""Weight averaging (--ema): the average's rule, what the run scores and saves, and --resume."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import assert_same_checkpoints, run_cli, train_tiny

AVERAGED = {"seed": 5, "augment": "light", "ema": 0.6}  # light augmentation: randomness in play, cheaply


def test_the_average_moves_by_one_minus_decay_per_step():
    from rustlab.training import make_weight_average

    layer = torch.nn.Linear(3, 2)
    assert make_weight_average(layer, 0.0) is None
    average = make_weight_average(layer, 0.75)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average.update()  # the first update takes the weights as they are
    torch.testing.assert_close(average.module.weight, torch.ones(2, 3))
    with torch.no_grad():
        layer.weight.fill_(5.0)
    average.update()
    torch.testing.assert_close(average.module.weight, torch.full((2, 3), 0.75 * 1.0 + 0.25 * 5.0))
    assert layer.weight[0, 0] == 5.0, "averaging must not touch the weights that train"


@pytest.mark.parametrize("model", ["cnn", "unet"])
def test_a_run_scores_and_saves_the_average_not_the_last_step(tmp_path, model):
    from safetensors.torch import load_file

    from rustlab.checkpoint import read_metadata
    from rustlab.training.state import load_train_state

    result = train_tiny(model, tmp_path, epochs=2, name="avg", **AVERAGED)
    saved = load_file(str(result.run_dir / "last.safetensors"))
    state = load_train_state(result.run_dir)
    assert state.average is not None and int(state.average["n_averaged"]) > 1
    averaged = {k[len("module."):]: v for k, v in state.average.items() if k.startswith("module.")}
    moved = 0
    for key, tensor in saved.items():
        key = key.removeprefix("model.")  # a checkpoint's weight names
        torch.testing.assert_close(tensor, averaged[key])  # the checkpoint holds the average ...
        if tensor.is_floating_point() and not torch.allclose(tensor, state.model[key]):
            moved += 1  # ... which differs from the weights of the last step
    assert moved > 0
    assert read_metadata(result.run_dir / "best.safetensors")["train_args"]["ema"] == 0.6


def test_resume_with_an_average_equals_the_uninterrupted_run(tmp_path):
    from rustlab.errors import Interrupted
    from rustlab.training.trainer import train
    from rustlab.training.state import resume_config

    reference = train_tiny("cnn", tmp_path, epochs=4, name="reference", **AVERAGED)
    stop = threading.Event()

    def log(message):
        if message.startswith("epoch 2/"):
            stop.set()

    with pytest.raises(Interrupted):
        train_tiny("cnn", tmp_path, epochs=4, name="stopped", log=log, stop_event=stop, **AVERAGED)
    run_dir = tmp_path / "stopped"
    train(resume_config(run_dir), log=lambda *_: None, resume=run_dir)
    assert_same_checkpoints(run_dir, reference.run_dir)


def test_a_bad_decay_is_one_line(capsys):
    code, _, err = run_cli(capsys, "train", "--model", "cnn", "--data", "builtin:32", "--ema", "1.5")
    assert code != 0
    assert "--ema must be in [0, 1)" in err and "Traceback" not in err
