"""A segmenter's image-call head (rustlab.training.image_call; ``unet-effnet-lite0`` with
``image_call = "head"``): fitted after training without touching the mask, carried as a second
output channel through evaluate, predict and ONNX, and never fitted on a held-out photo."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_DATA, run_cli, tiny_config, write_collector

from rustlab.data.records import Example
from rustlab.errors import RustlabError

MODEL = "unet-effnet-lite0"


def _head_config() -> dict:
    return {**tiny_config(MODEL), "image_call": "head"}


def _build(config: dict):
    from rustlab.registry import get_model_spec

    spec = get_model_spec(MODEL)
    return spec.build(spec.make_config(config)).eval()


def test_the_head_adds_a_constant_channel_once_fitted_and_leaves_the_mask_alone():
    torch.manual_seed(0)
    model = _build(_head_config())
    x = torch.randn(6, 3, 32, 40)
    with torch.no_grad():
        before = model(x)
    assert before.shape == (6, 1, 32, 40)  # not fitted: no call channel, the area call stands in
    assert not any(p.requires_grad for p in model.call_head.parameters())  # fitted, never stepped
    rust = torch.tensor([True, False] * 3)
    info = model.fit_image_call([x[:4], x[4:]], rust)
    assert info["call_photos"] == 6 and info["call_rust"] == 3
    with torch.no_grad():
        after = model(x)
    assert after.shape == (6, 2, 32, 40)
    assert torch.equal(after[:, :1], before)  # the mask is exactly what it was
    call = after[:, 1]
    assert torch.allclose(call, call[:, :1, :1].expand_as(call))  # one logit per photo
    assert ((call[:, 0, 0] > 0) == rust).all()  # 6 photos, 864 features: the fit separates them
    # a checkpoint's state dict brings the fitted head back, and with it the channel
    restored = _build(_head_config())
    restored.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(restored.eval()(x), after, atol=1e-5)


def test_an_area_model_has_no_head_to_fit():
    from rustlab.training.image_call import has_image_call_head

    model = _build(tiny_config(MODEL))
    assert not has_image_call_head(model) and has_image_call_head(_build(_head_config()))
    with pytest.raises(ValueError, match="no head"):
        model.fit_image_call([torch.zeros(1, 3, 32, 32)], torch.tensor([True]))
    with pytest.raises(RustlabError, match="image_call must be"):
        _build({**tiny_config(MODEL), "image_call": "max"})


def test_call_data_leaves_out_photos_the_run_trains_on_or_holds_out(tmp_path):
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits
    from rustlab.training.image_call import call_examples

    folder = write_collector(tmp_path / "labelled", seed=1, count=6, size=24)
    train = sorted(ex.key for ex in assign_splits(load_source(str(folder)), seed=0)["train"])
    held, trained = train[0], train[1]  # photos the head would otherwise fit on
    link = tmp_path / "negatives" / "held.png"  # the same photo under another name
    link.parent.mkdir()
    link.symlink_to(held)

    class Data:
        splits = {"train": [Example(key="t", image=trained, label=0)],
                  "validation": [], "test": [Example(key="h", image=str(link), label=0)]}

    (source, kept), = call_examples(Data, [str(folder)], seed=0)
    # only the source's training split is fitted on, less the two photos the run already has
    assert sorted(ex.key for ex in kept) == train[2:]
    assert all(ex.label is not None for ex in kept)


@pytest.fixture(scope="module")
def head_run(tmp_path_factory):
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    root = tmp_path_factory.mktemp("image_call")
    labelled = write_collector(root / "labelled", seed=3, count=12, size=40)
    logs = []
    cfg = TrainConfig(model=MODEL, data=TINY_DATA, epochs=1, batch_size=16, out=str(root / "runs"), name="head",
                      model_config=_head_config(), device="cpu", call_data=[str(labelled)], tta="hflip")
    result = train(cfg, log=logs.append)
    return result, labelled, logs


def test_training_fits_the_head_and_every_path_uses_it(head_run, capsys, tmp_path):
    from rustlab.checkpoint import read_metadata
    from rustlab.inference.loading import build_model_from_checkpoint

    result, labelled, logs = head_run
    ckpt = result.run_dir / "best.safetensors"
    assert any(line.startswith("call data ") for line in logs)
    assert any(line.startswith("image-call head fitted: ") for line in logs)
    assert result.test_metrics["image_call"]["score"].startswith("image-call head")
    assert read_metadata(ckpt)["train_args"]["call_data"] == [str(labelled)]
    model, meta = build_model_from_checkpoint(ckpt, tta="none")
    assert model.call_ready and meta["tta"] == "none"

    # evaluate scores a labelled folder by the head's call
    code, out, err = run_cli(capsys, "evaluate", "-c", result.run_dir, "--data", labelled, "--split", "all",
                             "--json", "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["image_call"]["score"].startswith("image-call head")

    # predict: the call is the head's probability, the mask is still a mask
    photo = next(labelled.rglob("*.png"))
    code, out, err = run_cli(capsys, "predict", "-c", ckpt, photo, "--json", "--device", "cpu")
    assert code == 0, err
    row = json.loads(out.splitlines()[0])
    assert row["is_rust"] == (row["rust_probability"] >= 0.5) and 0.0 <= row["rust_area"] <= 1.0

    # ONNX carries the call channel: the same answer through onnxruntime
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "head.onnx"
    code, out, err = run_cli(capsys, "export", "--checkpoint", ckpt, "--format", "onnx", "--out", onnx_path)
    assert code == 0, err
    code, out, err = run_cli(capsys, "predict", "--onnx", onnx_path, photo, "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["rust_probability"] == pytest.approx(row["rust_probability"], abs=1e-3)


def test_call_data_for_a_model_without_a_head_is_refused_before_training(tmp_path):
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    labelled = write_collector(tmp_path / "labelled", seed=4, count=4, size=24)
    cfg = TrainConfig(model="unet", data=TINY_DATA, epochs=1, batch_size=16, out=str(tmp_path / "runs"),
                      model_config=tiny_config("unet"), device="cpu", call_data=[str(labelled)])
    logs = []
    with pytest.raises(RustlabError, match="no image-call head"):
        train(cfg, log=logs.append)
    assert not any(line.startswith("epoch") for line in logs)


def test_call_data_is_left_unused_when_the_config_asks_for_the_area_call(tmp_path):
    """A recipe that names call data, run with --set image_call=area (its earlier results)."""
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    labelled = write_collector(tmp_path / "labelled", seed=4, count=4, size=24)
    cfg = TrainConfig(model=MODEL, data=TINY_DATA, epochs=1, batch_size=16, out=str(tmp_path / "runs"),
                      model_config=tiny_config(MODEL), device="cpu", call_data=[str(labelled)])
    logs = []
    result = train(cfg, log=logs.append)
    assert any("--call-data is not used" in line for line in logs)
    assert "area_threshold" in result.test_metrics["image_call"]


def test_a_head_with_photos_of_one_kind_only_is_refused_before_training(tmp_path):
    """Masked scenes are all rust: without negatives or --call-data the head has nothing to tell
    apart, and the run says so before its epochs, not after them."""
    import numpy as np
    from PIL import Image

    from rustlab.config import TrainConfig
    from rustlab.data.synthetic import render_sample
    from rustlab.training.trainer import train

    scenes = tmp_path / "scenes"
    (scenes / "images").mkdir(parents=True)
    (scenes / "masks").mkdir()
    for i in range(12):
        img, mask = render_sample(np.random.default_rng([5, i]), 32, True)
        Image.fromarray(img).save(scenes / "images" / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(scenes / "masks" / f"{i}.png")
    cfg = TrainConfig(model=MODEL, data=str(scenes), epochs=1, batch_size=16, out=str(tmp_path / "runs"),
                      model_config=_head_config(), device="cpu")
    logs = []
    with pytest.raises(RustlabError, match="both kinds"):
        train(cfg, log=logs.append)
    assert not any(line.startswith("epoch") for line in logs)
    assert list((tmp_path / "runs").iterdir()) == []  # and leaves no run folder behind
