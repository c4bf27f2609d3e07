"""``unet-effnet-lite0``: a U-Net over timm's EfficientNet-Lite feature maps (strides 2-32,
``features_only``) with a small decoder (upsample, concatenate the skip, two 3x3 convs per level)
and one rust logit per pixel (N x 1 x H x W). Starting weights, freezing and parameter groups
come from ``model._Pretrained``, as for the classifier.

With ``image_call = "head"`` it also calls the photo: a logistic regression on the mean and
spread of the encoder's two deepest feature maps (what the classifier's probe reads), fitted in
closed form after training (``fit_image_call``) on photos labelled rust / no rust. Its logit is a
second output channel, constant over the pixels (rustlab.tasks.segmentation). The masks never
see it, so a head changes no pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rustlab.padding import pad_to_multiple
from rustlab_pretrained.model import IMAGENET_HEAD, UNetEffNetLiteConfig, _Pretrained
from rustlab_pretrained.weights import VARIANTS


class DecoderBlock(nn.Module):
    """2x bilinear upsampling, concatenate the encoder's skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class EvenSamePadConv2d(nn.Conv2d):
    """TF-"same" convolution with the padding it takes on inputs of EVEN height and width, fixed.

    timm's ``Conv2dSame`` computes its padding from the input size in every forward; ``torch.export``
    with dynamic height and width then has to reason about ``ceil(h / stride)`` symbolically and
    never finishes. In the U-Net every stride-2 conv sees an even size (the input is padded to a
    multiple of 32), where TF-"same" pads k - 2 in total, the odd pixel after: constant padding
    gives the same numbers (tests/test_pretrained.py) and exports like any conv."""

    @classmethod
    def replacing(cls, conv: nn.Conv2d) -> "EvenSamePadConv2d":
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                  conv.groups, conv.bias is not None)
        new.load_state_dict(conv.state_dict())
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for k, s, d in zip(reversed(self.kernel_size), reversed(self.stride), reversed(self.dilation)):
            total = max(d * (k - 1) + 1 - s, 0)  # TF-"same" on a size divisible by the stride
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _fix_same_padding(net: nn.Module) -> None:
    from timm.layers import Conv2dSame

    for name, module in list(net.named_modules()):
        if isinstance(module, Conv2dSame):
            parent, _, leaf = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, leaf, EvenSamePadConv2d.replacing(module))


class UNetEffNetLite(_Pretrained):
    """U-Net: timm EfficientNet-Lite feature maps (strides 2, 4, 8, 16, 32) as the encoder."""

    STRIDE = 32

    def __init__(self, cfg: UNetEffNetLiteConfig):
        import timm

        super().__init__()
        self.config = cfg
        self.backbone = timm.create_model(VARIANTS[cfg.variant][0], pretrained=False, features_only=True,
                                          out_indices=(0, 1, 2, 3, 4), drop_path_rate=float(cfg.drop_path))
        _fix_same_padding(self.backbone)  # exportable with dynamic H x W (see EvenSamePadConv2d)
        chs = self.backbone.feature_info.channels()  # lite0: 16, 24, 40, 112, 320
        self.bottleneck_dropout = nn.Dropout2d(float(cfg.dropout)) if cfg.dropout > 0 else nn.Identity()
        dec = cfg.decoder_channels
        ins = (chs[4],) + dec[:3]
        self.decoder = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(ins, chs[3::-1], dec))
        self.head = nn.Conv2d(dec[3], 1, kernel_size=1)
        self.call_ready = False  # a head not yet fitted adds no channel: the area call stands in
        if cfg.image_call == "head":
            self.call_head = nn.Linear(2 * (chs[3] + chs[4]), 1).requires_grad_(False)  # fitted, not stepped
            # saved with the weights, so a checkpoint knows its head was fitted (see _restore_call)
            self.register_buffer("call_fitted", torch.zeros((), dtype=torch.bool))
            self.register_load_state_dict_post_hook(_restore_call)
        # the encoder has no ImageNet head: conv_head/bn2/classifier of the weights stay unused
        self._finish(cfg, unused=IMAGENET_HEAD)

    @staticmethod
    def _call_features(feats: list) -> torch.Tensor:
        """N x D: the mean and spread of each channel of the two deepest feature maps."""
        return torch.cat([stat for m in feats[3:] for stat in
                          (m.mean((2, 3)), (m.var((2, 3), unbiased=False) + 1e-6).sqrt())], dim=1)

    @torch.no_grad()
    def fit_image_call(self, batches, rust: torch.Tensor) -> dict:
        """Fit the image-call head: ``batches`` yields normalised N x 3 x H x W photos (as decoded,
        not augmented), ``rust`` says which are rust (bool, in the same order). The rest of the
        model is left as it is."""
        from rustlab_pretrained.probe import fit_logistic

        if self.config.image_call != "head":
            raise ValueError("this model's image_call is 'area': it has no head to fit")
        mode = self.training
        self.eval()
        features = torch.cat([self._call_features(self.backbone(self._input(pad_to_multiple(x, self.STRIDE))))
                              .float().cpu() for x in batches])
        self.train(mode)
        if len(features) != len(rust):
            raise ValueError(f"{len(features)} photos but {len(rust)} labels")
        # each class weighs the same in the fit (the area call's threshold, too, maximises balanced
        # accuracy): scenes, labelled photos and negatives need not come in the proportions users meet
        counts = torch.bincount(rust.long(), minlength=2).double()
        weight, bias = fit_logistic(features, rust.long(), 2, float(self.config.call_l2),
                                    sample_weight=(1.0 / counts)[rust.long()])
        # two-class logits (no rust, rust) -> one rust logit: their difference
        self.call_head.weight.copy_((weight[1] - weight[0])[None].to(self.call_head.weight))
        self.call_head.bias.copy_((bias[1:] - bias[:1]).to(self.call_head.bias))
        self.call_fitted.fill_(True)
        self.call_ready = True
        called = (features @ (weight[1] - weight[0]) + (bias[1] - bias[0])) > 0
        return {"call_photos": len(rust), "call_rust": int(rust.sum()), "call_features": int(features.shape[1]),
                "call_l2": float(self.config.call_l2),
                "call_train_accuracy": float((called == rust.bool().cpu()).float().mean())}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # padded to a multiple of 32 (cropped back below): every stride-2 conv then sees an even
        # size, so TF-"same" padding is the same at every input size and the skips line up exactly
        x = self._input(pad_to_multiple(x, self.STRIDE))
        feats = self.backbone(x)
        y = self.bottleneck_dropout(feats[4])
        for block, skip in zip(self.decoder, feats[3::-1]):
            y = block(y, skip)
        y = self.head(y)  # stride 2: upsampling the logit is far cheaper than a full-size decoder level
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)[..., :h, :w]
        if self.call_ready:  # the call's logit as a second channel, the same at every pixel
            call = self.call_head(self._call_features(feats))
            y = torch.cat([y, call[:, :, None, None].expand(-1, -1, h, w)], dim=1)
        return y.contiguous()


def _restore_call(module: "UNetEffNetLite", incompatible_keys) -> None:
    """After load_state_dict: a fitted head from the checkpoint adds its channel again. A plain
    attribute, not the buffer, is what forward reads, so that ONNX export traces no branch."""
    module.call_ready = bool(module.call_fitted)


def build_unet(cfg: UNetEffNetLiteConfig) -> UNetEffNetLite:
    return UNetEffNetLite(cfg)
