"""A small U-Net for per-pixel rust segmentation: the output is one logit per pixel (N, 1, H, W).

Encoder: ``depth`` times [2x2 max pool, double conv], widths ``base_width * 2**level``.
Decoder: per level, upsample 2x, concatenate the encoder features of the same level (the skip
connection), double conv back down to that level's width. A 1x1 conv gives the logit.

Any input size works: the input is padded to the next multiple of ``2**depth`` so every pooling
halves exactly and every skip has the size of its upsampled partner, and the output is cropped
back to the input's H x W.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from rustlab.padding import pad_to_multiple

UPSAMPLE_MODES = ("transpose", "bilinear")


@dataclass
class UNetConfig:
    image_size: int = 256  # input size used for training/prediction preprocessing
    in_channels: int = 3
    base_width: int = 16  # channels at level 0; doubles each level
    depth: int = 4  # number of down-sampling steps
    kernel_size: int = 3
    upsample: str = "transpose"  # "transpose" (ConvTranspose2d 2x2 s2) or "bilinear" (Upsample + 1x1 conv)
    batch_norm: bool = True
    dropout: float = 0.0  # dropout at the bottleneck (channel-wise, see UNet)

    def __post_init__(self):
        for name in ("image_size", "in_channels", "base_width", "depth", "kernel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"UNetConfig.{name} must be an int >= 1, got {value!r}")
        if self.kernel_size % 2 == 0:
            # An even kernel with padding k//2 grows the map by one pixel per conv, so the skip
            # connections would no longer line up with the upsampled features.
            raise ValueError(f"UNetConfig.kernel_size must be odd, got {self.kernel_size}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"UNetConfig.upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"UNetConfig.dropout must be in [0, 1), got {self.dropout!r}")

    def width(self, level: int) -> int:
        return self.base_width * 2**level


class DoubleConv(nn.Sequential):
    """conv -> [BN] -> ReLU -> conv -> [BN] -> ReLU, keeping H x W ("same" padding k//2).

    The second conv maps ``out_ch -> out_ch`` (the seed wrongly gave it ``in_ch`` inputs).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, batch_norm: bool):
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, cin in ((1, in_ch), (2, out_ch)):
            # With BN right after, a conv bias is redundant (BN's shift absorbs it).
            layers[f"conv{i}"] = nn.Conv2d(cin, out_ch, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
            if batch_norm:
                layers[f"bn{i}"] = nn.BatchNorm2d(out_ch)
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
        super().__init__(layers)  # named layers (conv1, bn1, ...) make the shapes easy to check


class Up(nn.Module):
    """Upsample 2x from ``in_ch`` to ``in_ch // 2`` channels, concatenate the skip, double conv."""

    def __init__(self, in_ch: int, cfg: UNetConfig):
        super().__init__()
        out_ch = in_ch // 2
        if cfg.upsample == "transpose":
            self.up = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)
        else:
            # Fixed interpolation then a 1x1 conv to halve the channels: no checkerboard artifacts,
            # fewer parameters than the transposed conv.
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_ch, out_ch, kernel_size=1),
            )
        self.conv = DoubleConv(2 * out_ch, out_ch, cfg.kernel_size, cfg.batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # No casts: under autocast both halves come out of convs in the autocast dtype, and
        # torch.cat type-promotes should they ever differ.
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.config = cfg
        self.stem = DoubleConv(cfg.in_channels, cfg.width(0), cfg.kernel_size, cfg.batch_norm)
        self.downs = nn.ModuleList(
            nn.Sequential(
                nn.MaxPool2d(2),
                DoubleConv(cfg.width(i - 1), cfg.width(i), cfg.kernel_size, cfg.batch_norm),
            )
            for i in range(1, cfg.depth + 1)
        )
        # Dropout2d drops whole feature maps: neighbouring pixels of one map are strongly
        # correlated, so element-wise dropout would barely regularise a conv layer.
        self.bottleneck_dropout = nn.Dropout2d(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(Up(cfg.width(i), cfg) for i in range(cfg.depth, 0, -1))
        self.head = nn.Conv2d(cfg.width(0), 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected input (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, 2**self.config.depth)  # the output is cropped back below
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = self.bottleneck_dropout(skips.pop())
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)[..., :h, :w]


def build_unet(cfg: UNetConfig) -> UNet:
    return UNet(cfg)
