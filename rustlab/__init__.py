"""rustlab: find rust in photos of steel.

Heavy modules (torch, datasets) are imported lazily so that `rustlab --help` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "create_model", "list_models", "get_model_spec", "Predictor"]


def __getattr__(name):
    # Lazy re-exports: importing rustlab must not import torch.
    if name == "hookimpl":
        from rustlab.hookspecs import hookimpl

        return hookimpl
    if name in ("create_model", "list_models", "get_model_spec"):
        from rustlab import registry

        return getattr(registry, name)
    if name == "Predictor":
        from rustlab.inference.predictor import Predictor

        return Predictor
    raise AttributeError(name)
