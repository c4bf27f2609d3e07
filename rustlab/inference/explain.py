"""Grad-CAM: where in the photo a classification checkpoint finds its evidence.

Generic over plugins: it hooks the last ``nn.Conv2d`` of whatever model a checkpoint builds,
so a new classifier plugin gets heatmaps without code here (the core never imports plugins).
Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks", ICCV 2017.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rustlab.errors import RustlabError


class ExplainError(RustlabError):
    """A model that Grad-CAM cannot explain (no convolution, not a classifier)."""


def last_conv(model: nn.Module) -> str:
    """Name of the last ``nn.Conv2d`` in registration order (the forward order of the plugins'
    ``nn.Sequential`` stacks): the deepest feature map that still has spatial layout."""
    name = None
    for n, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            name = n
    if name is None:
        raise ExplainError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    return name


class GradCAM:
    """Heatmaps in [0, 1] at input resolution for one target class per image."""

    def __init__(self, model: nn.Module, layer: str | None = None):
        # A private copy with in-place ops switched off: an in-place ReLU right after the conv
        # would overwrite the activations Grad-CAM keeps and break their gradient; the caller's
        # model (shared with the Predictor) stays untouched.
        self.model = copy.deepcopy(model).eval()
        for module in self.model.modules():
            if getattr(module, "inplace", False):
                module.inplace = False
        self.layer = layer or last_conv(self.model)
        modules = dict(self.model.named_modules())
        if self.layer not in modules:
            raise ExplainError(f"no layer named {self.layer!r} in {type(model).__name__}")
        self._activations = None
        modules[self.layer].register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output):
        self._activations = output

    def __call__(self, x: torch.Tensor, target) -> torch.Tensor:
        """``x``: normalised float N x C x H x W; ``target``: class index, or one per image.
        Returns N x H x W float32 on the CPU; each map is scaled so its maximum is 1 (all
        zeros where nothing in the image speaks for the target class)."""
        targets = torch.as_tensor(target, device=x.device).long().reshape(-1).expand(len(x))
        with torch.inference_mode(False), torch.enable_grad():
            # a leaf that requires grad keeps a graph even when the weights are frozen
            x = x.detach().clone().float().requires_grad_(True)
            logits = self.model(x)
            if logits.ndim != 2:
                raise ExplainError(f"Grad-CAM needs class scores (N x classes), the model gives "
                                   f"shape {tuple(logits.shape)}")
            acts = self._activations
            self._activations = None
            # pre-softmax score, as in the paper: the softmax would mix in the other classes
            score = logits.gather(1, targets[:, None]).sum()
            (grads,) = torch.autograd.grad(score, acts)
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * acts).sum(dim=1, keepdim=True)).detach()
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
        return (cam / peak).clamp_(0, 1).float().cpu()


class Explainer:
    """Grad-CAM for a loaded Predictor, preprocessing exactly as its predictions do."""

    def __init__(self, predictor):
        if not predictor.task.explainable:
            raise ExplainError(f"Grad-CAM explains image-level classifiers; {predictor.meta['model']} is a "
                               f"{predictor.task.name} model (it shows its own mask)")
        self.predictor = predictor
        self.cam = GradCAM(predictor.model)
        self.rust_index = int(predictor.meta["rust_index"])

    def rust_heatmap(self, image, name: str | None = None) -> np.ndarray:
        """S x S float32 in [0, 1]: where the model sees evidence for rust (S = model input size)."""
        from rustlab.data.transforms import normalize

        tensor, _ = self.predictor.preprocess(image, name)
        pre = self.predictor.meta["preprocessing"]
        x = normalize(tensor[None].to(self.predictor.device), pre["mean"], pre["std"])
        return self.cam(x, self.rust_index)[0].numpy()
