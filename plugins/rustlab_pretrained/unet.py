"""``unet-effnet-lite0``: a U-Net over timm's EfficientNet-Lite feature maps (strides 2-32,
``features_only``) with a small decoder (upsample, concatenate the skip, two 3x3 convs per level)
and one rust logit per pixel (N x 1 x H x W). Starting weights, freezing and parameter groups
come from ``model._Pretrained``, as for the classifier."""

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
        # the encoder has no ImageNet head: conv_head/bn2/classifier of the weights stay unused
        self._finish(cfg, unused=IMAGENET_HEAD)

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
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y[..., :h, :w].contiguous()


def build_unet(cfg: UNetEffNetLiteConfig) -> UNetEffNetLite:
    return UNetEffNetLite(cfg)
