"""BatchNorm folding for inference (rustlab.inference.batchnorm_fold): the same outputs for every registered
model, nothing folded where it would change them, and the Predictor running the folded copy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rustlab.inference.batchnorm_fold import fold_batchnorm
from rustlab.registry import get_registry, get_task
from conftest import TINY, train_tiny


def _randomise_batchnorms(model: nn.Module, seed: int = 0) -> int:
    """Statistics and affine parameters far from their init (which would fold to almost nothing)."""
    g = torch.Generator().manual_seed(seed)
    count = 0
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=g))
            module.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            module.weight.data.copy_(torch.randn(c, generator=g))
            module.bias.data.copy_(torch.randn(c, generator=g))
            count += 1
    return count


@pytest.mark.parametrize("name", sorted(TINY))
def test_folding_keeps_every_registered_models_outputs(name):
    from rustlab.training import build_model

    spec = get_registry().models[name]
    task = get_task(spec.task)
    model, config = build_model(spec, task, ["no_rust", "rust"], 32, {**TINY[name], **(
        {"weights": "none"} if "weights" in spec.default_config().__dataclass_fields__ else {})}, seed=0)
    batchnorms = _randomise_batchnorms(model)
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x)
        folded = fold_batchnorm(model, x[:1])
        after = folded(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4 * (1 + float(before.abs().max())))
    if batchnorms:
        # every model registered here puts each BatchNorm right after a convolution
        assert folded is not model and folded.folded_batchnorms == batchnorms
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batchnorms  # the original is untouched
    else:
        assert folded is model


class _SkipBeforeNorm(nn.Module):
    """A convolution whose output feeds its BatchNorm and, unnormalised, a skip connection."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class _ReluBetween(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(torch.relu(self.conv(x)))


class _InplaceReluBetween(_ReluBetween):
    """The BatchNorm reads the convolution's output tensor itself, changed in place."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.bn(self.relu(self.conv(x)))


# _SkipBeforeNorm's pair is found (the skip is invisible to hooks) and the output check drops it
@pytest.mark.parametrize("net, paired", [(_SkipBeforeNorm, True), (_ReluBetween, False), (_InplaceReluBetween, False)])
def test_a_batchnorm_that_cannot_be_folded_is_left_alone(net, paired):
    model = net()
    _randomise_batchnorms(model)
    x = torch.randn(1, 3, 16, 16)
    from rustlab.inference.batchnorm_fold import conv_batchnorm_pairs

    assert bool(conv_batchnorm_pairs(model, x)[0]) is paired
    folded = fold_batchnorm(model, x)
    assert folded is model and isinstance(model.bn, nn.BatchNorm2d)


def test_a_batchnorm_subclass_that_does_more_is_left_alone():
    class ScaledNorm(nn.BatchNorm2d):
        def forward(self, x):
            return 2 * super().forward(x)

    model = nn.Sequential(nn.Conv2d(3, 4, 3), ScaledNorm(4))
    _randomise_batchnorms(model)
    assert fold_batchnorm(model, torch.randn(1, 3, 8, 8)) is model


def test_the_predictor_runs_the_folded_copy_and_keeps_the_model_for_grad_cam(tmp_path, sample_images):
    from rustlab.inference.predictor import Predictor

    run = train_tiny("unet", tmp_path, epochs=1)  # conv -> BatchNorm -> ReLU throughout
    predictor = Predictor(run.run_dir / "best.safetensors", device="cpu", engine="torch")
    assert predictor.runner is not predictor.model and predictor.runner.folded_batchnorms > 0
    assert any(isinstance(m, nn.BatchNorm2d) for m in predictor.model.modules())
    path = str(next(iter(sorted(sample_images.iterdir()))))
    tensor, _ = predictor.preprocess(path)
    folded = predictor.forward(tensor[None])
    predictor.runner = predictor.model
    torch.testing.assert_close(folded, predictor.forward(tensor[None]), rtol=1e-4, atol=1e-4)


def test_folding_works_when_called_under_inference_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    _randomise_batchnorms(model)
    with torch.inference_mode():
        x = torch.randn(1, 3, 8, 8)  # an inference tensor: no version counter
        folded = fold_batchnorm(model, x)
        torch.testing.assert_close(folded(x), model.eval()(x), rtol=1e-4, atol=1e-4)
    assert folded.folded_batchnorms == 1
