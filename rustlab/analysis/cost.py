"""What a network costs: parameters, multiply-accumulates (MACs) and feature-map shapes.

This backs the kernel study ("a big kernel sees more but costs more; a small stride costs
more"), so the numbers must be trustworthy. MACs are therefore computed twice, in two
independent ways, and the tests require them to agree exactly:

* ``formula_macs``: from each layer's textbook formula, using the shapes seen in one forward;
* ``counted_macs``: from the aten ops that actually ran, via ``torch.utils.flop_counter``.

Definition used everywhere here: **only the multiply-accumulates of convolutions
(``Conv*d``, ``ConvTranspose*d``) and matrix products (``Linear``) are counted.** Bias adds,
normalisation, activations, pooling and upsampling are left out. This is the definition
``FlopCounterMode`` uses (its conv formula ignores the bias, and ``addmm`` is counted as the
bare ``mm``), so the two counts are comparable; those other ops are cheap next to the convs.

All MAC numbers are per image (the batch is divided out); shapes keep the batch dimension.
A convolution written functionally (``F.conv2d`` in a ``forward``) is invisible to the
formula but not to the counter: a mismatch between the two counts means exactly that.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from math import prod

import torch
from torch import nn

__all__ = [
    "LayerCost",
    "ModelCost",
    "StageShape",
    "layer_table",
    "formula_macs",
    "counted_macs",
    "model_cost",
    "stage_shapes",
    "default_input_shape",
]

# The aten ops whose FLOPs are the MACs of conv / linear layers (x2). FlopCounterMode knows
# more ops (attention, ...) that our layer formulas do not cover; those are left out on purpose.
_MAC_OPS = {
    "convolution",
    "_convolution",
    "cudnn_convolution",
    "_slow_conv2d_forward",
    "convolution_overrideable",
    "mm",
    "addmm",
    "bmm",
    "baddbmm",
}


@dataclass
class LayerCost:
    """One call of one leaf module. ``macs`` is per image; ``params`` are the module's own,
    reported on its first call only so that the column sums to the model's leaf parameters."""

    name: str
    type: str
    input_shape: tuple
    output_shape: tuple
    params: int
    macs: int


@dataclass
class StageShape:
    name: str
    type: str
    shape: tuple


@dataclass
class ModelCost:
    """Totals for a model at one input shape (MACs per image, both ways of counting)."""

    input_shape: tuple
    params: int
    trainable_params: int
    macs: int
    counted_macs: int
    layers: list


# --------------------------------------------------------------------------- helpers


def default_input_shape(model: nn.Module) -> tuple:
    """(1, C, H, W) from ``model.config`` (``in_channels``, ``image_size``) when it has one:
    rustlab models carry their config, so callers rarely need to spell the shape out."""
    cfg = getattr(model, "config", None)
    size = getattr(cfg, "image_size", None)
    if size is None:
        raise ValueError("input_shape is required: the model has no config.image_size")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return (1, int(getattr(cfg, "in_channels", 3)), int(h), int(w))


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Eval mode for the duration, then each module's own flag back: an analysis must not
    update BatchNorm running stats nor draw dropout masks, nor leave the model changed."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def example_input(model: nn.Module, input_shape) -> torch.Tensor:
    p = next(model.parameters(), None)
    device, dtype = (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)
    return torch.randn(tuple(input_shape), device=device, dtype=dtype)


def first_tensor(x):
    """Modules may take or return tuples (MaxPool with indices, custom blocks): use the first tensor."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            t = first_tensor(item)
            if t is not None:
                return t
    return None


def leaf_modules(model: nn.Module):
    return [(name or type(m).__name__, m) for name, m in model.named_modules() if not any(True for _ in m.children())]


def layer_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """MACs of one call, for the whole batch, from the layer formula (0 for non conv/linear)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        k = prod(module.kernel_size)
        if module.transposed:
            # Each input element is scattered through the kernel to every output channel of its group.
            return inp.numel() * (module.out_channels // module.groups) * k
        # Each output element is a dot product over the kernel and the input channels of its group.
        return out.numel() * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        rows = inp.numel() // module.in_features  # batch x any leading dims
        return rows * module.in_features * module.out_features
    return 0


# --------------------------------------------------------------------------- public API


def layer_table(model: nn.Module, input_shape=None) -> list[LayerCost]:
    """Per leaf-module call, in forward order: shapes, own parameters and formula MACs.

    One forward (no grad, eval mode) with hooks on every leaf module; the shapes it sees feed
    the formulas (Conv: out_elems * in_ch/groups * kh*kw; ConvTranspose: in_elems *
    out_ch/groups * kh*kw; Linear: rows * in * out). Works for any module tree, so the UNet's
    ``ConvTranspose2d`` / ``Upsample`` / skip connections need nothing special.
    """
    input_shape = tuple(input_shape or default_input_shape(model))
    batch = input_shape[0]
    rows: list[LayerCost] = []
    seen: set[int] = set()

    def hook(name):
        def record(module, args, output):
            inp, out = first_tensor(args), first_tensor(output)
            macs = layer_macs(module, inp, out) if inp is not None and out is not None else 0
            first_call = id(module) not in seen
            seen.add(id(module))
            rows.append(
                LayerCost(
                    name=name,
                    type=type(module).__name__,
                    input_shape=tuple(inp.shape) if inp is not None else (),
                    output_shape=tuple(out.shape) if out is not None else (),
                    params=sum(p.numel() for p in module.parameters(recurse=False)) if first_call else 0,
                    macs=macs // batch,
                )
            )

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in leaf_modules(model)]
    try:
        with eval_mode(model), torch.no_grad():
            model(example_input(model, input_shape))
    finally:
        for h in handles:
            h.remove()
    return rows


def formula_macs(model: nn.Module, input_shape=None) -> int:
    """Per-image conv + linear MACs, from the layer formulas (see module docstring)."""
    return sum(row.macs for row in layer_table(model, input_shape))


def counted_macs(model: nn.Module, input_shape=None) -> int:
    """Per-image conv + matmul MACs as counted by ``FlopCounterMode`` (its FLOPs / 2).

    An independent check on ``formula_macs``: it sees the aten ops that really ran, including
    convolutions a layer table would miss. Only the ops in ``_MAC_OPS`` are summed.
    """
    from torch.utils.flop_counter import FlopCounterMode

    input_shape = tuple(input_shape or default_input_shape(model))
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(example_input(model, input_shape))
    flops = sum(n for op, n in counter.get_flop_counts()["Global"].items() if getattr(op, "__name__", str(op)) in _MAC_OPS)
    assert flops % (2 * input_shape[0]) == 0, "MAC counts are linear in the batch"
    return flops // (2 * input_shape[0])


def model_cost(model: nn.Module, input_shape=None) -> ModelCost:
    """Parameters and per-image MACs (both counts) plus the per-layer table, ready for JSON
    via ``dataclasses.asdict``."""
    input_shape = tuple(input_shape or default_input_shape(model))
    layers = layer_table(model, input_shape)
    return ModelCost(
        input_shape=input_shape,
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=sum(row.macs for row in layers),
        counted_macs=counted_macs(model, input_shape),
        layers=layers,
    )


def stage_shapes(model: nn.Module, input_shape=None) -> list[StageShape]:
    """Output shape after each child of ``model.features`` (the CNN's trunk), or after each
    leaf conv of models without one (the UNet): how fast resolution falls with stride / pool."""
    input_shape = tuple(input_shape or default_input_shape(model))
    features = getattr(model, "features", None)
    if not (isinstance(features, nn.Module) and any(True for _ in features.children())):
        return [
            StageShape(row.name, row.type, row.output_shape)
            for row in layer_table(model, input_shape)
            if row.type.startswith("Conv")  # Conv*d and ConvTranspose*d
        ]
    stages: list[StageShape] = []

    def hook(name):
        def record(module, args, output):
            stages.append(StageShape(f"features.{name}", type(module).__name__, tuple(first_tensor(output).shape)))

        return record

    handles = [child.register_forward_hook(hook(name)) for name, child in features.named_children()]
    try:
        with eval_mode(model), torch.no_grad():
            model(example_input(model, input_shape))
    finally:
        for h in handles:
            h.remove()
    return stages
