"""The U-Net model alone (no registry): shapes, gradients, config checks, parameter count."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import torch

try:
    import rustlab_unet.model  # noqa: F401  (installed: plugins/ is a setuptools package root)
except ImportError:  # plain checkout, not pip-installed
    _root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_root), str(_root / "plugins")]

from rustlab_unet.model import DoubleConv, UNet, UNetConfig, build_unet  # noqa: E402

TINY = dict(base_width=4, depth=2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def expected_param_count(cfg: UNetConfig) -> int:
    """Closed form, written independently of the model code."""
    k2 = cfg.kernel_size**2
    w = [cfg.width(i) for i in range(cfg.depth + 1)]

    def double_conv(cin, cout):
        extra = 4 * cout if cfg.batch_norm else 2 * cout  # BN weight+bias per conv, else conv bias
        return k2 * (cin * cout + cout * cout) + extra

    total = double_conv(cfg.in_channels, w[0])
    total += sum(double_conv(w[i - 1], w[i]) for i in range(1, cfg.depth + 1))
    for i in range(1, cfg.depth + 1):  # decoder: w[i] -> w[i-1]
        up_kernel = 4 if cfg.upsample == "transpose" else 1  # 2x2 transpose conv vs 1x1 conv
        total += up_kernel * w[i] * w[i - 1] + w[i - 1]
        total += double_conv(2 * w[i - 1], w[i - 1])
    return total + w[0] + 1  # 1x1 head to one logit


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


CONFIGS = [
    dict(upsample=up, depth=d, kernel_size=k, batch_norm=bn)
    for up, d, k, bn in itertools.product(("transpose", "bilinear"), (1, 2, 3, 4), (3, 5), (True, False))
]


@pytest.mark.parametrize("overrides", CONFIGS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_forward_backward(overrides):
    cfg = UNetConfig(base_width=4, **overrides)
    model = build_unet(cfg).train()
    x = torch.randn(2, 3, 20, 28)  # not a multiple of 2**depth for any depth here
    y = model(x)
    assert y.shape == (2, 1, 20, 28)
    torch.nn.functional.binary_cross_entropy_with_logits(y, (x[:, :1] > 0).float()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert n_params(model) == expected_param_count(cfg)


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (17, 31), (37, 53), (5, 64), (64, 64)])
def test_any_input_size_gives_same_hw(hw):
    model = build_unet(UNetConfig(base_width=4, depth=3)).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, *hw))
    assert y.shape == (2, 1, *hw)
    assert torch.isfinite(y).all()


def test_odd_size_trains():
    model = build_unet(UNetConfig(base_width=4, depth=3)).train()
    model(torch.randn(2, 3, 17, 31)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_batch_size_one_eval():
    model = build_unet(UNetConfig(base_width=4, depth=3, dropout=0.5))
    model(torch.randn(4, 3, 24, 24)).sum().backward()  # one train step so BN stats are non-trivial
    model.eval()
    x = torch.randn(3, 3, 24, 24)
    with torch.no_grad():
        single = model(x[1:2])
        batch = model(x)
        again = model(x[1:2])
    assert single.shape == (1, 1, 24, 24)
    assert torch.equal(single, again)  # eval: dropout off, BN running stats
    torch.testing.assert_close(single, batch[1:2])  # and no mixing across the batch


def test_config_is_exposed():
    cfg = UNetConfig(**TINY)
    model = build_unet(cfg)
    assert isinstance(model, UNet)
    assert model.config is cfg


@pytest.mark.parametrize(
    "bad",
    [
        dict(upsample="nearest"),
        dict(depth=0),
        dict(base_width=0),
        dict(in_channels=0),
        dict(image_size=0),
        dict(kernel_size=4),
        dict(kernel_size=0),
        dict(depth=2.5),
        dict(dropout=1.0),
        dict(dropout=-0.1),
    ],
    ids=str,
)
def test_bad_config_raises(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        UNetConfig(**bad)


def test_wrong_input_channels_raises():
    model = build_unet(UNetConfig(**TINY))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(1, 1, 16, 16))


def test_second_conv_takes_out_channels():
    cfg = UNetConfig(in_channels=3, base_width=4, depth=3, kernel_size=5)
    model = build_unet(cfg)
    blocks = [m for m in model.modules() if isinstance(m, DoubleConv)]
    assert len(blocks) == 2 * cfg.depth + 1  # stem, depth encoder blocks, depth decoder blocks
    for block in blocks:
        c1, c2 = block.conv1, block.conv2
        assert c2.in_channels == c1.out_channels == c2.out_channels
        assert c2.weight.shape == (c1.out_channels, c1.out_channels, 5, 5)
        assert c1.padding == c2.padding == (2, 2)
    # Widths per level: stem 3->4, encoder 4->8->16->32, decoder concat 2w->w back to 4.
    assert [(b.conv1.in_channels, b.conv1.out_channels) for b in blocks] == [
        (3, 4), (4, 8), (8, 16), (16, 32), (32, 16), (16, 8), (8, 4)
    ]
    assert model.head.in_channels == 4 and model.head.out_channels == 1


def test_param_count_scales_with_base_width():
    for up in ("transpose", "bilinear"):
        counts = [n_params(build_unet(UNetConfig(base_width=b, depth=3, upsample=up))) for b in (1, 2, 3, 4, 8)]
        # Every weight is linear (input conv, BN, biases) or quadratic (conv->conv) in base_width,
        # plus the head's single bias: P(b) = a*b^2 + c*b + 1, so third differences vanish.
        p1, p2, p3, p4, p8 = counts
        assert p4 - 3 * p3 + 3 * p2 - p1 == 0
        a = (p3 - 2 * p2 + p1) // 2
        c = p1 - a - 1
        assert p8 == a * 64 + c * 8 + 1
        assert 3.5 < p8 / p4 < 4  # dominated by the quadratic term


def test_default_param_count():
    cfg = UNetConfig()
    assert n_params(build_unet(cfg)) == expected_param_count(cfg) == 1_942_577


def test_bilinear_is_smaller_than_transpose():
    t = n_params(build_unet(UNetConfig(**TINY, upsample="transpose")))
    b = n_params(build_unet(UNetConfig(**TINY, upsample="bilinear")))
    assert b < t


def test_channels_last_matches_contiguous():
    model = build_unet(UNetConfig(base_width=4, depth=3, upsample="bilinear")).eval()
    x = torch.randn(2, 3, 19, 27)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    model.train()
    model(x.contiguous(memory_format=torch.channels_last)).sum().backward()


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_autocast(upsample):
    model = build_unet(UNetConfig(base_width=4, depth=3, upsample=upsample)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(torch.randn(2, 3, 17, 31))
    assert y.shape == (2, 1, 17, 31)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.dtype == p.dtype == torch.float32
        assert torch.isfinite(p.grad).all()


def test_float64():
    model = build_unet(UNetConfig(**TINY)).double()
    assert model(torch.randn(1, 3, 9, 9, dtype=torch.float64)).dtype == torch.float64


def test_padding_reflects_and_falls_back_to_replicate():
    from rustlab.padding import pad_to_multiple

    multiple = 2 ** UNetConfig(**TINY).depth  # what the tiny U-Net pads its input to: 4
    x = torch.arange(5 * 6, dtype=torch.float32).reshape(1, 1, 5, 6)
    padded = pad_to_multiple(x, multiple)
    assert padded.shape[-2:] == (8, 8)
    torch.testing.assert_close(padded[..., 5:, :6], x[..., [3, 2, 1], :])  # mirrored, no zero band
    tiny = pad_to_multiple(torch.ones(1, 1, 1, 1), multiple)  # too small to reflect 3 rows
    assert torch.equal(tiny, torch.ones(1, 1, 4, 4))
    x4 = x[..., :4, :4]
    assert pad_to_multiple(x4, multiple) is x4  # already a multiple: untouched
