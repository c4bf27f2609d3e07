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
        smoke_config={"base_width": 4, "depth": 2, "image_size": 32},
        description="U-Net with skip connections (base width 16, depth 4), per-pixel rust mask",
    )
