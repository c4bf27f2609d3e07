"""The reference 3-conv CNN classifier (rust / no rust), registered as model ``cnn``."""

from rustlab import hookimpl

from rustlab_cnn.model import CNNConfig, build_cnn


@hookimpl
def rustlab_register_models(register):
    register(
        "cnn",
        task="classification",
        config=CNNConfig,
        build=build_cnn,
        smoke_config={"widths": [8, 16, 16], "hidden": 32, "image_size": 32},
        description="The seed's 3-conv CNN (3->32->64->128, FC 512, dropout 0.5), configurable kernels",
    )
