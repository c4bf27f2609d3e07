"""rustlab.analysis: MAC counts agree two ways, RFs match hand computations, ERF stays inside the RF."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
try:
    import rustlab_cnn  # noqa: F401
except ImportError:  # repo not pip-installed: use the source trees
    sys.path.insert(0, str(ROOT / "plugins"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

from rustlab.analysis import (  # noqa: E402
    counted_macs,
    effective_rf,
    formula_macs,
    layer_table,
    model_cost,
    stage_shapes,
    theoretical_rf,
)
from rustlab_cnn.model import CNN, CNNConfig  # noqa: E402

TINY = (4, 8, 8)
GRID = list(itertools.product((3, 5, 7), (1, 2), (True, False), (False, True)))  # kernel, stride, pool, bn


def tiny_cnn(**kw) -> CNN:
    torch.manual_seed(0)
    kw.setdefault("widths", TINY)
    kw.setdefault("hidden", 16)
    return CNN(CNNConfig(**kw))


def transposed_net() -> nn.Sequential:
    """A UNet-like mix: transposed convs (one grouped), upsampling, depthwise conv, pools, linear."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
        nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    )


# --------------------------------------------------------------------------- cost


@pytest.mark.parametrize("kernel,stride,pool,bn", GRID)
def test_formula_macs_match_flop_counter(kernel, stride, pool, bn):
    model = tiny_cnn(kernel_size=kernel, stride=stride, pool=pool, batch_norm=bn, image_size=64)
    macs = formula_macs(model, (1, 3, 64, 64))
    assert macs > 0
    assert macs == counted_macs(model, (1, 3, 64, 64))
    # Per image: a batch of 3 costs the same per image.
    assert formula_macs(model, (3, 3, 64, 64)) == macs == counted_macs(model, (3, 3, 64, 64))


def test_transposed_net_macs_by_hand_and_counter():
    model = transposed_net()
    shape = (2, 3, 16, 16)
    # Written out for a 16x16 input, per image:
    conv1 = 4 * 16 * 16 * 3 * 9  # out elems * in_ch * k*k                  = 27648
    # max pool -> 4x8x8
    convt1 = 4 * 8 * 8 * 6 * 9  # in elems * out_ch * k*k  (out 6x16x16)   = 13824
    convt2 = 6 * 16 * 16 * (4 // 2) * 4  # in elems * out_ch/groups * k*k   = 12288 (out 4x32x32)
    # upsample -> 4x64x64
    depthwise = 4 * 64 * 64 * (4 // 4) * 9  # out elems * in_ch/groups * k*k = 147456
    linear = 16 * 5
    expected = conv1 + convt1 + convt2 + depthwise + linear
    assert expected == 201296
    assert formula_macs(model, shape) == expected
    assert counted_macs(model, shape) == expected


def test_seed_cnn_by_hand_at_32():
    model = CNN(CNNConfig(image_size=32))  # the seed: 3->32->64->128, 3x3 same conv, 2x2 pool, fc 512
    rows = {r.name: r for r in layer_table(model)}
    assert rows["features.0"].macs == 32 * 32 * 32 * 3 * 9  # 32x32 out, 32 ch, 3 in ch = 884736
    assert rows["features.3"].macs == 16 * 16 * 64 * 32 * 9  # after pool: 16x16          = 4718592
    assert rows["features.6"].macs == 8 * 8 * 128 * 64 * 9  # 8x8                          = 4718592
    assert rows["classifier.1"].macs == 128 * 4 * 4 * 512
    assert rows["classifier.4"].macs == 512 * 2
    assert rows["features.8"].output_shape == (1, 128, 4, 4)
    cost = model_cost(model)
    assert cost.macs == cost.counted_macs == 884736 + 2 * 4718592 + 1048576 + 1024
    # conv: in*out*k*k + out bias; fc: in*out + out
    assert cost.params == (3 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 128 * 9 + 128) + (2048 * 512 + 512) + (
        512 * 2 + 2
    )
    assert sum(r.params for r in cost.layers) == cost.params
    json.dumps(dataclasses.asdict(cost))  # JSON-friendly


def test_stage_shapes():
    shapes = stage_shapes(tiny_cnn(image_size=32))
    assert [s.name for s in shapes][:3] == ["features.0", "features.1", "features.2"]
    assert shapes[-1].shape == (1, 8, 4, 4)
    convs = stage_shapes(transposed_net(), (1, 3, 16, 16))  # no .features: one entry per conv
    assert [s.shape[1:] for s in convs] == [(4, 16, 16), (6, 16, 16), (4, 32, 32), (4, 64, 64)]


def test_analysis_leaves_model_untouched():
    model = tiny_cnn(batch_norm=True, image_size=32)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_cost(model)
    effective_rf(model, n_samples=2)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------- receptive field


def test_theoretical_rf_three_conv_pool_blocks_by_hand():
    # r_l = r_{l-1} + (k-1) * j_{l-1};  j_l = j_{l-1} * s_l;  r_0 = j_0 = 1
    # conv3 s1: r = 1 + 2*1 = 3,    j = 1
    # pool2:    r = 3 + 1*1 = 4,    j = 2
    # conv3 s1: r = 4 + 2*2 = 8,    j = 2
    # pool2:    r = 8 + 1*2 = 10,   j = 4
    # conv3 s1: r = 10 + 2*4 = 18,  j = 4
    # pool2:    r = 18 + 1*4 = 22,  j = 8
    rf = theoretical_rf(tiny_cnn(image_size=32))
    assert [layer.rf[0] for layer in rf.layers] == [3, 4, 8, 10, 18, 22]
    assert [layer.jump[0] for layer in rf.layers] == [1, 2, 2, 4, 4, 8]
    assert rf.rf == (22, 22) and rf.jump == (8, 8)
    assert rf.measured_on == "features" and rf.output_shape == (1, 8, 4, 4)
    # Centre unit 1 of the 4x4 map; unit 0 starts at -1 (padding 1 at conv1) - 1*2 (conv2) - 1*4 (conv3) = -7,
    # so unit 1 starts at -7 + 1*8 = 1 and spans 22 pixels: [1, 22].
    assert rf.centre_unit == (1, 1)
    assert rf.window == ((1, 22), (1, 22))
    json.dumps(dataclasses.asdict(rf))


def test_theoretical_rf_stride_and_dilation_by_hand():
    # k5 s2 p2 with pool: conv r5 j2; pool r7 j4; conv r7+4*4=23 j8; pool r31 j16; conv r31+4*16=95 j32; pool r127 j64
    rf = theoretical_rf(tiny_cnn(kernel_size=5, stride=2, image_size=64))
    assert [layer.rf[0] for layer in rf.layers] == [5, 7, 23, 31, 95, 127]
    assert rf.jump == (64, 64)
    # dilation 2 turns a 3x3 into a 5-wide span; a following 3x3 adds 2; ConvTranspose k2 s2 adds 0, halves the jump.
    net = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3, stride=2), nn.ConvTranspose2d(1, 1, 2, 2))
    rf = theoretical_rf(net, (1, 1, 20, 20))
    assert [layer.rf[0] for layer in rf.layers] == [5, 7, 7]
    assert [layer.jump[0] for layer in rf.layers] == [1, 2, 1]


def test_theoretical_rf_stops_at_global_pool():
    rf = theoretical_rf(transposed_net(), (1, 3, 16, 16))
    assert rf.measured_on == "model" and rf.stopped_at == "9"
    assert rf.output_shape == (1, 4, 32, 32)


ERF_CONFIGS = [
    dict(kernel_size=3, stride=1, pool=True, image_size=64),
    dict(kernel_size=5, stride=1, pool=True, batch_norm=True, image_size=64),
    dict(kernel_size=7, stride=1, pool=False, image_size=48),
    dict(kernel_size=3, stride=2, pool=False, padding=0, image_size=61),  # odd sizes, floor effects
    dict(kernel_size=7, stride=1, pool=True, padding=0, image_size=64),  # valid convs shift the windows
    dict(kernel_size=3, stride=2, pool=True, padding=2, image_size=64),  # over-padding
    dict(kernel_size=5, stride=2, pool=True, image_size=64),  # window larger than the image
]


@pytest.mark.parametrize("cfg", ERF_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_effective_rf_lies_inside_theoretical_window(cfg):
    model = tiny_cnn(**cfg)
    erf = effective_rf(model, n_samples=8)
    (top, bottom), (left, right) = erf.theoretical_window
    (r0, r1), (c0, c1) = erf.nonzero_box
    assert top <= r0 and r1 <= bottom and left <= c0 and c1 <= right
    assert erf.mass_inside == pytest.approx(1.0, abs=1e-6)
    assert 0 < erf.extent[0] <= min(erf.theoretical_rf[0], cfg["image_size"])
    json.dumps(dataclasses.asdict(erf))


def test_some_erf_windows_are_strictly_inside_the_image():
    """Otherwise the containment test above would hold trivially."""
    inside = 0
    for cfg in ERF_CONFIGS:
        (top, bottom), (left, right) = theoretical_rf(tiny_cnn(**cfg)).window
        inside += top > 0 and left > 0 and bottom < cfg["image_size"] - 1 and right < cfg["image_size"] - 1
    assert inside >= 3


def test_window_is_tight_for_a_linear_net():
    """No ReLU / max pool: every pixel of the window has a nonzero gradient, so the window is exact."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.AvgPool2d(2),
        nn.Conv2d(2, 2, 5, stride=2, padding=2),
        nn.Conv2d(2, 1, 3, dilation=2, padding=2),
    )
    rf = theoretical_rf(net, (1, 1, 40, 40))
    erf = effective_rf(net, (1, 1, 40, 40), n_samples=2)
    assert erf.nonzero_box == rf.window  # fully inside the image here
    assert rf.window[0][1] - rf.window[0][0] + 1 == rf.rf[0]


def test_effective_rf_through_transposed_and_upsample():
    erf = effective_rf(transposed_net(), (1, 3, 16, 16), n_samples=4)
    assert erf.mass_inside == pytest.approx(1.0, abs=1e-6)
    (top, bottom), (left, right) = erf.theoretical_window
    (r0, r1), (c0, c1) = erf.nonzero_box
    assert top <= r0 and r1 <= bottom and left <= c0 and c1 <= right


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_unet_when_present(upsample):
    """The analysis is generic over modules: the UNet (skips, ConvTranspose / Upsample) needs nothing special."""
    unet = pytest.importorskip("rustlab_unet.model")
    torch.manual_seed(0)
    model = unet.UNet(unet.UNetConfig(image_size=32, base_width=4, depth=2, upsample=upsample))
    assert formula_macs(model) == counted_macs(model) > 0
    erf = effective_rf(model, n_samples=2)  # 32 is a multiple of 2**depth: no (reflect) input padding
    assert erf.mass_inside == pytest.approx(1.0, abs=1e-6)
