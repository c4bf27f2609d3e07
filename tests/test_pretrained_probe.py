"""effnet-lite0-probe: mid-level features of the frozen backbone and a closed-form logistic head."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("timm")

from rustlab_pretrained.probe import fit_logistic  # noqa: E402


def _create(name, **overrides):
    from rustlab.registry import create_model

    return create_model(name, **overrides).eval()


def test_logistic_fit_folds_the_standardisation_into_raw_weights():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g) * torch.tensor([1.0, 100.0, 0.01, 3.0, 1.0]) + 50.0
    score = (x[:, 1] - 50) / 100 + (x[:, 3] - 50) / 3
    y = (score > score.median()).long()
    y[:7] = -1  # unknown labels are left out
    weight, bias = fit_logistic(x, y, num_classes=2, l2=1e-3)
    assert weight.shape == (2, 5) and bias.shape == (2,)
    predicted = (x @ weight.T + bias).argmax(1)
    assert float((predicted[7:] == y[7:]).float().mean()) > 0.97  # raw features, no standardising step
    # a stronger penalty shrinks the weights (on the standardised scale)
    weak, _ = fit_logistic(x, y, 2, l2=1e-3)
    strong, _ = fit_logistic(x, y, 2, l2=10.0)
    std = x[7:].std(0)
    assert float((strong * std).norm()) < float((weak * std).norm())


def test_logistic_fit_weights_rows_and_refuses_one_class():
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    y = torch.tensor([0, 0, 1, 1])
    even = fit_logistic(x, y, 2, l2=1.0)
    tilted = fit_logistic(x, y, 2, l2=1.0, sample_weight=torch.tensor([1.0, 1.0, 10.0, 10.0]))
    # weighting class 1 up moves the boundary towards class 0: the middle point 1.5 leans class 1
    at_mid = lambda w, b: float((torch.tensor([[1.5]]) @ w.T + b).softmax(1)[0, 1])  # noqa: E731
    assert at_mid(*even) == pytest.approx(0.5, abs=1e-3)
    assert at_mid(*tilted) > 0.6
    with pytest.raises(ValueError, match="two classes"):
        fit_logistic(x, torch.tensor([1, 1, 1, -1]), 2, l2=1.0)


def test_feature_blocks_cut_the_network_and_match_the_full_one():
    """Blocks 4 and 5 of the cut network give the full network's activations, pooled."""
    full = _create("effnet-lite0", weights="none", image_size=32, channels_last=False)
    probe = _create("effnet-lite0-probe", weights="none", image_size=32, channels_last=False)
    assert len(probe.backbone.blocks) == 6 and probe.head.in_features == 2 * (112 + 192)
    probe.backbone.load_state_dict({k: v for k, v in full.backbone.state_dict().items()
                                    if not k.startswith(("conv_head.", "bn2.", "classifier.", "blocks.6."))})
    seen = {}
    for i in (4, 5):
        full.backbone.blocks[i].register_forward_hook(lambda m, inp, out, i=i: seen.__setitem__(i, out))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full(x)
        features = probe.features(x)
    expected = torch.cat([torch.cat([seen[i].mean((2, 3)), seen[i].std((2, 3), unbiased=False)], 1) for i in (4, 5)], 1)
    assert torch.allclose(features, expected, atol=1e-4)
    assert not any(p.requires_grad for p in probe.parameters())  # closed form: nothing to step


def test_bad_feature_blocks_and_head_fit_are_refused():
    from rustlab.errors import RustlabError
    from rustlab.registry import get_model_spec

    spec = get_model_spec("effnet-lite0-probe")
    for bad in ({"feature_blocks": [7]}, {"feature_blocks": [4, 4]}, {"head_fit": "adam"}, {"head_l2": 0}):
        with pytest.raises(RustlabError, match="bad config"):
            spec.make_config(**bad)


def test_grad_cam_hooks_the_deepest_kept_block():
    from rustlab.inference.explain import GradCAM, last_conv

    model = _create("effnet-lite0-probe", weights="none", image_size=32)
    assert last_conv(model).startswith("backbone.blocks.5.")
    cam = GradCAM(model)(torch.randn(1, 3, 64, 64), 1)
    assert cam.shape == (1, 64, 64)


def test_trainer_fits_the_head_once_with_balanced_weights(tmp_path):
    """One "epoch" (the fit), scored on validation; --balance reaches the fit as sample weights."""
    from rustlab.inference.loading import build_model_from_checkpoint
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    lines = []
    cfg = TrainConfig(model="effnet-lite0-probe", data="builtin:64", epochs=5, out=str(tmp_path), name="p",
                      device="cpu", balance="classes", model_config={"weights": "none", "image_size": 32})
    result = train(cfg, log=lines.append)
    assert len(result.history) == 1  # another epoch would refit the same data to the same head
    assert any("fit on the training split: features 608" in line for line in lines)
    assert not any("--balance does not apply" in line for line in lines)
    model, _ = build_model_from_checkpoint(result.run_dir / "best.safetensors")
    assert float(model.head.weight.abs().sum()) > 0  # the fitted head was saved


def test_a_fit_without_sample_weights_says_balance_does_not_apply(tmp_path):
    from rustlab.config import TrainConfig
    from rustlab.training.trainer import train

    lines = []
    cfg = TrainConfig(model="colour-rule", data="builtin:48", out=str(tmp_path), name="r", device="cpu",
                      balance="classes")
    train(cfg, log=lines.append)
    assert any("--balance does not apply" in line for line in lines)


@pytest.mark.parametrize("blocks, width", [([0], 16), ([6], 320), ([0, 3], 16 + 80)])
def test_any_block_can_feed_the_head(blocks, width):
    model = _create("effnet-lite0-probe", weights="none", image_size=32, feature_blocks=blocks)
    assert model.head.in_features == 2 * width and len(model.backbone.blocks) == max(blocks) + 1
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)
