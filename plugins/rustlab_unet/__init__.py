"""The U-Net segmenter (one rust logit per pixel), registered as model ``unet``."""

from rustlab import hookimpl

from rustlab_unet.model import UNetConfig, build_unet


@hookimpl
def rustlab_register_models(register):
    register(
        "unet",
        task="segmentation",
        config=UNetConfig,
        build=build_unet,
        description="U-Net with skip connections (base width 16, depth 4), per-pixel rust mask",
    )
