"""The seed's reference network, with the knobs that `rustlab bench kernels` sweeps.

Seed: conv(3->32) relu pool, conv(32->64) relu pool, conv(64->128) relu pool, flatten 128*4*4,
fc 512 relu dropout 0.5, fc 2. Here the flatten is preceded by adaptive average pooling to
``head_grid`` x ``head_grid`` (4x4, as the seed at 32x32), so the head keeps its size at any
input size instead of growing with resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CNNConfig:
    # 96 px: best validation accuracy of 32/64/96/128 on corrosion-cls (experiments/input_size)
    image_size: int = 96
    in_channels: int = 3
    num_classes: int = 2
    widths: tuple = (32, 64, 128)
    kernel_size: int = 3
    stride: int = 1
    padding: int | None = None  # None: kernel_size // 2, the "same" padding of the seed's 3x3
    pool: bool = True  # 2x2 max pooling after each conv, as in the seed
    batch_norm: bool = False
    head_grid: int = 4
    hidden: int = 512
    dropout: float = 0.5

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or min(self.widths) < 1:
            raise ValueError("widths must be a non-empty list of positive ints")
        for name in ("image_size", "kernel_size", "stride", "head_grid", "hidden", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def conv_padding(self) -> int:
        return self.kernel_size // 2 if self.padding is None else int(self.padding)


class CNN(nn.Module):
    def __init__(self, cfg: CNNConfig):
        super().__init__()
        self.config = cfg
        layers: list[nn.Module] = []
        channels = cfg.in_channels
        for width in cfg.widths:
            layers.append(
                nn.Conv2d(channels, width, cfg.kernel_size, cfg.stride, cfg.conv_padding, bias=not cfg.batch_norm)
            )
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            if cfg.pool:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.head_pool = nn.AdaptiveAvgPool2d(cfg.head_grid)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * cfg.head_grid**2, cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head_pool(self.features(x)))


def build_cnn(cfg: CNNConfig) -> CNN:
    return CNN(cfg)
