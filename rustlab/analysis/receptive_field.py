"""How much of the image one output unit can see: theoretical and effective receptive field.

The kernel study's claim is "a small kernel sees details, a big kernel sees global
features". The *theoretical* RF (``theoretical_rf``) is the pixel window that can influence a
unit at all; the *effective* RF (``effective_rf``) is where the influence actually is,
measured from input gradients (Luo et al. 2016, "Understanding the Effective Receptive
Field"): it is typically a much smaller, roughly Gaussian blob in the middle of the window.

Where the RF is measured: on ``model.features`` when the model has one (the CNN), i.e. on
the last spatial feature map. After the CNN's adaptive average pool every head unit sees the
whole image, so an RF measured past it would say nothing about the kernels. Models without
``features`` (the UNet) are measured on their own output; a forward pass is followed until
the first adaptive pool / flatten / linear layer, if any (``stopped_at`` names it).

Assumptions: zero padding (a ``circular`` padding_mode wraps around and breaks the window);
the layers are taken in forward order as one chain. For a plain chain (the CNN) that is
exact. For a UNet the chain through every layer in forward order is the encoder-bottleneck-
decoder path, the deepest path, whose window contains those of the skip paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor

import torch
from torch import nn

from rustlab.analysis.cost import default_input_shape, eval_mode, first_tensor, leaf_modules

__all__ = ["RFLayer", "ReceptiveField", "EffectiveRF", "theoretical_rf", "effective_rf", "erf_map"]

# Layers past which a unit sees (almost) the whole map or there is no map any more.
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_STOP = (*_ADAPTIVE, nn.Flatten, nn.Linear)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)


@dataclass
class RFLayer:
    """One layer of the chain, per spatial axis (H, W). ``rf`` and ``jump`` are after it:
    ``jump`` is the distance in input pixels between neighbouring units of its output."""

    name: str
    type: str
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    rf: tuple
    jump: tuple
    output_shape: tuple


@dataclass
class ReceptiveField:
    """``window`` is the centre output unit's RF as inclusive pixel ranges per axis,
    ((top, bottom), (left, right)); it may stick out of the image where padding was used."""

    input_shape: tuple
    measured_on: str  # "features" or "model"
    stopped_at: str | None
    rf: tuple
    jump: tuple
    output_shape: tuple
    centre_unit: tuple
    window: tuple
    layers: list


@dataclass
class EffectiveRF:
    """``extent`` is the (height, width) of the box around pixels with |grad| above
    ``threshold`` x max; ``std`` is the spread (standard deviation, pixels, per axis) of the
    |grad| mass around its ``centroid``: unlike a thresholded box it does not saturate at the
    theoretical RF, so it shows how concentrated the influence is. ``mass_inside`` is the
    share of |grad| inside the theoretical window (1.0 up to float error by construction: a
    check on both computations)."""

    input_shape: tuple
    centre_unit: tuple
    threshold: float
    n_samples: int
    extent: tuple
    extent_box: tuple
    nonzero_box: tuple
    centroid: tuple
    std: tuple
    theoretical_rf: tuple
    theoretical_window: tuple
    mass_inside: float


# --------------------------------------------------------------------------- layer geometry


def _per_axis(value, nd: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd


@dataclass
class _Axis:
    """How one layer maps indices along one axis. ``kind``: conv (also pooling), transposed
    (ConvTranspose), or nearest / linear / cubic (Upsample; ``ratio`` = in size / out size)."""

    kind: str
    k: int = 1
    s: int = 1
    p: int = 0
    d: int = 1
    ratio: Fraction = Fraction(1)
    align_corners: bool = False

    def span(self) -> int:
        """Largest distance, in input units, between the inputs one output unit depends on."""
        m = self.d * (self.k - 1)
        if self.kind == "conv":
            return m
        if self.kind == "transposed":  # output o reads inputs i with i*s = o + p - d*t, t < k
            return m // self.s
        return {"nearest": 0, "linear": 1, "cubic": 3}[self.kind]

    def jump_factor(self) -> Fraction:
        if self.kind == "conv":
            return Fraction(self.s)
        if self.kind == "transposed":
            return Fraction(1, self.s)
        return self.ratio

    def back(self, lo: int, hi: int) -> tuple[int, int]:
        """Input index range that output units lo..hi depend on (no clipping to the map)."""
        m = self.d * (self.k - 1)
        if self.kind == "conv":
            return lo * self.s - self.p, hi * self.s - self.p + m
        if self.kind == "transposed":
            return ceil(Fraction(lo + self.p - m, self.s)), floor(Fraction(hi + self.p, self.s))
        if self.kind == "nearest":
            return floor(lo * self.ratio), floor(hi * self.ratio)

        def src(o):  # PyTorch's source coordinate for output o
            if self.align_corners:
                return o * self.ratio
            return max((o + Fraction(1, 2)) * self.ratio - Fraction(1, 2), Fraction(0))

        reach = 1 if self.kind == "linear" else 2
        before = 0 if self.kind == "linear" else 1
        return floor(src(lo)) - before, floor(src(hi)) + reach


def _geometry(module: nn.Module, in_shape: tuple, out_shape: tuple) -> list[_Axis] | None:
    """Per-axis geometry of an RF-relevant layer, None for layers that keep positions
    (activations, normalisation, dropout, 1-to-1 ops)."""
    nd = len(out_shape) - 2
    if isinstance(module, nn.modules.conv._ConvNd):
        k, s, d = (_per_axis(v, nd) for v in (module.kernel_size, module.stride, module.dilation))
        if isinstance(module.padding, str):  # "valid" or "same" (same pads d(k-1)//2 before)
            p = tuple(0 if module.padding == "valid" else di * (ki - 1) // 2 for ki, di in zip(k, d))
        else:
            p = _per_axis(module.padding, nd)
        kind = "transposed" if module.transposed else "conv"
        return [_Axis(kind, k[i], s[i], p[i], d[i]) for i in range(nd)]
    if isinstance(module, _POOL):
        k = _per_axis(module.kernel_size, nd)
        s = _per_axis(module.stride or module.kernel_size, nd)
        p = _per_axis(module.padding, nd)
        d = _per_axis(getattr(module, "dilation", 1), nd)
        return [_Axis("conv", k[i], s[i], p[i], d[i]) for i in range(nd)]
    if isinstance(module, nn.Upsample):
        kind = {"nearest": "nearest", "nearest-exact": "nearest", "bicubic": "cubic"}.get(module.mode, "linear")
        return [
            _Axis(kind, ratio=Fraction(in_shape[2 + i], out_shape[2 + i]), align_corners=bool(module.align_corners))
            for i in range(nd)
        ]
    return None


def _is_stop(module: nn.Module, in_shape: tuple, out_shape: tuple) -> bool:
    """Adaptive pools that change the size, flatten and linear layers end the spatial map."""
    return isinstance(module, _STOP) and not (isinstance(module, _ADAPTIVE) and in_shape == out_shape)


def _trace(model: nn.Module, input_shape: tuple):
    """Run the measured part once; return (trunk, measured_on, [(name, module, in, out)])."""
    features = getattr(model, "features", None)
    trunk, measured_on = (features, "features") if isinstance(features, nn.Module) else (model, "model")
    calls = []

    def hook(name):
        def record(module, args, output):
            inp, out = first_tensor(args), first_tensor(output)
            calls.append((name, module, tuple(inp.shape), tuple(out.shape)))

        return record

    prefix = "features." if measured_on == "features" else ""
    handles = [m.register_forward_hook(hook(prefix + name)) for name, m in leaf_modules(trunk)]
    p = next(model.parameters(), None)
    x = torch.zeros(input_shape, device=p.device if p is not None else "cpu", dtype=p.dtype if p is not None else None)
    try:
        with eval_mode(model), torch.no_grad():
            trunk(x)
    finally:
        for h in handles:
            h.remove()
    return trunk, measured_on, calls


# --------------------------------------------------------------------------- public API


def theoretical_rf(model: nn.Module, input_shape=None) -> ReceptiveField:
    """Theoretical RF along the forward chain: r_l = r_{l-1} + span_l * j_{l-1},
    j_l = j_{l-1} * s_l, with span = dilation * (kernel - 1) for conv and pooling layers
    (r_0 = 1, j_0 = 1: one input pixel). ConvTranspose and Upsample divide the jump and add
    their own (small) span. Also returns the exact pixel window of the centre output unit,
    found by walking its index range back through every layer: this is what the effective RF
    is checked against, and it takes stride, pooling and padding offsets into account.

    For conv / pooling chains ``rf`` equals the window's width. After ConvTranspose or
    Upsample the jump is fractional and ``rf`` is an upper bound (outputs between input
    units see fewer inputs); the window stays exact there.
    """
    input_shape = tuple(input_shape or default_input_shape(model))
    _, measured_on, calls = _trace(model, input_shape)
    nd = len(input_shape) - 2
    rf, jump = [1] * nd, [Fraction(1)] * nd
    chain: list[list[_Axis]] = []
    layers: list[RFLayer] = []
    stopped_at = None
    out_shape = input_shape
    for name, module, in_shape, o_shape in calls:
        if _is_stop(module, in_shape, o_shape):
            stopped_at = name
            break
        out_shape = o_shape
        geom = _geometry(module, in_shape, o_shape)
        if geom is None:
            continue
        for i, ax in enumerate(geom):
            rf[i] += ax.span() * jump[i]
            jump[i] *= ax.jump_factor()
        chain.append(geom)
        layers.append(
            RFLayer(
                name=name,
                type=type(module).__name__,
                kernel=tuple(ax.k for ax in geom),
                stride=tuple(ax.s for ax in geom),
                padding=tuple(ax.p for ax in geom),
                dilation=tuple(ax.d for ax in geom),
                rf=tuple(_num(r) for r in rf),
                jump=tuple(_num(j) for j in jump),
                output_shape=o_shape,
            )
        )

    centre = tuple((n - 1) // 2 for n in out_shape[2:])
    window = []
    for i in range(nd):
        lo = hi = centre[i]
        for geom in reversed(chain):
            lo, hi = geom[i].back(lo, hi)
        window.append((lo, hi))
    return ReceptiveField(
        input_shape=input_shape,
        measured_on=measured_on,
        stopped_at=stopped_at,
        rf=tuple(_num(r) for r in rf),
        jump=tuple(_num(j) for j in jump),
        output_shape=out_shape,
        centre_unit=centre,
        window=tuple(window),
        layers=layers,
    )


def erf_map(model: nn.Module, input_shape=None, n_samples: int = 16, seed: int = 0) -> tuple[torch.Tensor, tuple]:
    """|d(centre unit)/d(input)|, summed over input channels and averaged over ``n_samples``
    random N(0, 1) inputs; returns (H x W map, centre unit). The centre unit is the sum over
    channels of the middle spatial position of the measured map (see module docstring).

    The model keeps its real (random or trained) weights and runs in eval mode; averaging
    over inputs smooths out which ReLUs / max-pool winners happen to be active.
    """
    input_shape = tuple(input_shape or default_input_shape(model))
    trunk, _, calls = _trace(model, input_shape)
    stop = _stop_module(calls)
    p = next(model.parameters(), None)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n_samples, *input_shape[1:]), generator=gen)
    if p is not None:
        x = x.to(device=p.device, dtype=p.dtype)
    x.requires_grad_(True)
    with eval_mode(model):
        out = _measured_output(trunk, x, stop)
    centre = tuple((n - 1) // 2 for n in out.shape[2:])
    # Samples are independent in eval mode, so one backward gives every sample's gradient.
    (grad,) = torch.autograd.grad(out[(slice(None), slice(None), *centre)].sum(), x)
    return grad.abs().sum(1).mean(0).detach(), centre


def effective_rf(
    model: nn.Module, input_shape=None, threshold: float = 0.01, n_samples: int = 16, seed: int = 0
) -> EffectiveRF:
    """Effective RF of the centre unit: the box where the averaged |grad| exceeds
    ``threshold`` x its max, and the share of gradient mass inside the theoretical window.

    2-D inputs (N, C, H, W) only.
    """
    input_shape = tuple(input_shape or default_input_shape(model))
    if len(input_shape) != 4:
        raise ValueError("effective_rf expects an (N, C, H, W) input shape")
    trf = theoretical_rf(model, input_shape)
    g, centre = erf_map(model, input_shape, n_samples, seed)
    g = g.double().cpu()
    (top, bottom), (left, right) = trf.window
    H, W = g.shape
    inside = g[max(top, 0) : min(bottom, H - 1) + 1, max(left, 0) : min(right, W - 1) + 1].sum()
    total = g.sum()
    extent_box = _box(g > threshold * g.max()) if total > 0 else ()
    centroid, std = _moments(g) if total > 0 else ((), ())
    return EffectiveRF(
        input_shape=input_shape,
        centre_unit=centre,
        threshold=threshold,
        n_samples=n_samples,
        extent=tuple(hi - lo + 1 for lo, hi in extent_box) if extent_box else (0, 0),
        extent_box=extent_box,
        nonzero_box=_box(g > 0) if total > 0 else (),
        centroid=centroid,
        std=std,
        theoretical_rf=trf.rf,
        theoretical_window=trf.window,
        mass_inside=float(inside / total) if total > 0 else float("nan"),
    )


def _stop_module(calls) -> nn.Module | None:
    for _, module, in_shape, out_shape in calls:
        if _is_stop(module, in_shape, out_shape):
            return module
    return None


class _Stop(Exception):
    pass


def _measured_output(trunk: nn.Module, x: torch.Tensor, stop: nn.Module | None) -> torch.Tensor:
    """The trunk's output, or the input of its first stop layer (the last spatial map)."""
    if stop is None:
        return first_tensor(trunk(x))
    seen = []

    def grab(module, args):
        seen.append(first_tensor(args))
        raise _Stop  # nothing after this point is needed

    handle = stop.register_forward_pre_hook(grab)
    try:
        trunk(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen[0]


def _box(mask: torch.Tensor) -> tuple:
    """Inclusive ((top, bottom), (left, right)) bounding box of a 2-D boolean mask."""
    rows = mask.any(1).nonzero().flatten()
    cols = mask.any(0).nonzero().flatten()
    return ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1])))


def _moments(g: torch.Tensor) -> tuple[tuple, tuple]:
    """Centroid and standard deviation (pixels) of a 2-D mass distribution, per axis."""
    w = g / g.sum()
    centroid, std = [], []
    for axis in (0, 1):
        marginal = w.sum(1 - axis)
        pos = torch.arange(len(marginal), dtype=w.dtype)
        mean = (marginal * pos).sum()
        centroid.append(float(mean))
        std.append(float(((pos - mean) ** 2 * marginal).sum().sqrt()))
    return tuple(centroid), tuple(std)


def _num(x: Fraction):
    """Fractions (after upsampling) as float, whole numbers as int: JSON-friendly."""
    return int(x) if x.denominator == 1 else float(x)
