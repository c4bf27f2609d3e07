"""Inference copies of a model with each BatchNorm folded into the convolution that feeds it.

In eval mode a BatchNorm is a fixed affine map per channel, so a convolution followed by it is one
convolution with scaled weights and a bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``). The
separate BatchNorm passes cost a quarter of a CPU forward of the pretrained classifier at 288 px
(2 cores; experiments/speed/batchnorm_fold.md), so `rustlab predict`, `rustlab evaluate` and the
GUI run a folded copy. Training never does: there the statistics still move.

Which BatchNorm reads which convolution is taken from one forward pass on an example (a
BatchNorm whose input is, every time, the output tensor of one convolution), not from layer
names, so any plugin's model is covered. The copy is then checked against the original on that
example and dropped if they differ, e.g. when the convolution's output also feeds another layer.
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# BatchNorm subclasses that do more after normalising, and the children that do it, in order:
# timm's BatchNormAct2d (EfficientNet and most timm CNNs) applies its ``drop`` then its ``act``.
# Matched by class name, so rustlab does not need timm; a subclass not listed is left unfolded.
AFTER_NORM = {"BatchNormAct2d": ("drop", "act")}


def _replacement(bn: nn.Module) -> nn.Module | None:
    """What stays in a BatchNorm's place once its normalisation is in the convolution."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    after = AFTER_NORM.get(type(bn).__name__)
    if after is None or not all(isinstance(getattr(bn, name, None), nn.Module) for name in after):
        return None
    return nn.Sequential(*(getattr(bn, name) for name in after))


def conv_batchnorm_pairs(model: nn.Module, example: torch.Tensor) -> tuple[list[tuple[str, str]], object]:
    """(convolution name, BatchNorm name) pairs where the BatchNorm's only input, every time it
    ran on ``example``, was that convolution's output, and that convolution fed no other
    BatchNorm; and the model's output on ``example``."""
    produced, outputs, fed, hooks = {}, [], {}, []

    def conv_hook(name):
        def hook(_module, _inputs, output):
            outputs.append(output)  # kept alive, so no later tensor reuses its id
            produced[id(output)] = (name, output._version)
        return hook

    def bn_hook(name):
        def hook(_module, inputs):
            conv, version = produced.get(id(inputs[0]), (None, None))
            # an in-place op between them (ReLU(inplace=True)) keeps the tensor, not its values
            fed.setdefault(name, set()).add(conv if inputs[0]._version == version else None)
        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook(name)))
        elif isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
            hooks.append(module.register_forward_pre_hook(bn_hook(name)))
    try:
        # normal tensors even when called under inference_mode: those carry no version counter
        with torch.inference_mode(False), torch.no_grad():
            output = model(example.clone())
    finally:
        for hook in hooks:
            hook.remove()
    pairs = [(next(iter(convs)), bn) for bn, convs in fed.items() if len(convs) == 1 and None not in convs]
    feeds = Counter(conv for conv, _ in pairs)
    return [(conv, bn) for conv, bn in pairs if feeds[conv] == 1], output


@contextlib.contextmanager
def _exact_convolutions():
    """cuDNN without TF32 while the fold is checked: TF32 alone moves outputs by ~1e-3."""
    cudnn = torch.backends.cudnn
    before = cudnn.allow_tf32
    cudnn.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32 = before


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def _same(a, b) -> bool:
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
        return False
    a, b = a.float(), b.float()
    # fp32 folding moves outputs by ~1e-6 of their scale; a wrong fold moves them by far more
    return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-4 * (1.0 + float(a.abs().max()))))


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """An eval-mode copy of ``model`` with every foldable BatchNorm folded into its convolution,
    or ``model`` itself when nothing folds or the copy's output on ``example`` (one input batch,
    on the model's device) differs from the original's. ``model`` is left in eval mode."""
    model.eval()
    with _exact_convolutions():
        pairs, expected = conv_batchnorm_pairs(model, example)
    if not pairs:
        return model
    folded = copy.deepcopy(model)
    modules = dict(folded.named_modules())
    count = 0
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        replacement = _replacement(bn)
        if replacement is None:
            continue
        fused = fuse_conv_bn_eval(conv, bn)
        # keep the original layout (channels_last stays channels_last)
        fused.weight = nn.Parameter(torch.empty_like(conv.weight).copy_(fused.weight), requires_grad=False)
        fused.bias = nn.Parameter(fused.bias.detach(), requires_grad=False)
        _set(folded, conv_name, fused)
        _set(folded, bn_name, replacement)
        count += 1
    if count == 0:
        return model
    folded.eval()
    with torch.no_grad(), _exact_convolutions():
        if not _same(expected, folded(example)):
            return model
    folded.folded_batchnorms = count  # how many were folded (tests and benchmarks read it)
    return folded


def fold_for_inference(model: nn.Module, preprocessing: dict, device, channels_last: bool = False) -> nn.Module:
    """``fold_batchnorm`` checked on a seeded random photo, preprocessed as a checkpoint's
    ``preprocessing`` (image_size, mean, std) says, on ``device``."""
    from rustlab.data.transforms import normalize

    size = int(preprocessing["image_size"])
    pixels = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    example = normalize(pixels.to(device), preprocessing["mean"], preprocessing["std"])
    if channels_last:
        example = example.contiguous(memory_format=torch.channels_last)
    return fold_batchnorm(model, example)
