"""The trainer's model: built from a plugin's spec for the data's classes, with its optimiser,
its schedule and the input preprocessing that belongs to its weights."""

from __future__ import annotations


def input_preprocessing(model_config, image_size: int) -> dict:
    """How pixels reach the model, stored in every checkpoint and used by every predictor.

    A model config with ``mean`` and ``std`` fields (pretrained weights that expect their own
    normalisation) overrides ImageNet's; the value space is pixel / 255 in both cases."""
    from rustlab.data.transforms import MEAN, STD

    mean = getattr(model_config, "mean", None) or MEAN
    std = getattr(model_config, "std", None) or STD
    return {"image_size": int(image_size), "mean": [float(v) for v in mean], "std": [float(v) for v in std],
            "resize": "square-bilinear", "decoder": "rustlab.data.images.load_square"}


def build_model(spec, task, class_names: list[str], image_size: int, model_config: dict | None = None,
                device=None, seed: int | None = None):
    """(model on ``device``, its config): the plugin's defaults, then ``model_config``, then what
    the data decides (``task.model_overrides``, the input size). ``seed`` seeds the init."""
    from rustlab.device import seed_everything

    overrides = dict(task.model_overrides(class_names))
    if hasattr(spec.default_config(), "image_size"):
        overrides["image_size"] = int(image_size)
    config = spec.make_config(model_config, **overrides)
    if seed is not None:
        seed_everything(seed)  # the model's init must not depend on how the data was read
    model = spec.build(config)
    return (model.to(device) if device is not None else model), config


def make_optimizer(model, cfg, steps_per_epoch: int):
    """AdamW (no weight decay on biases and norm parameters) and the run's LR schedule.

    A model may split its parameters itself with ``parameter_groups()``: a list of dicts with
    ``params`` and an ``lr_scale`` (e.g. a pretrained backbone at a tenth of the head's rate)."""
    import torch

    groups = []
    split = getattr(model, "parameter_groups", None)
    for group in (split() if callable(split) else [{"params": list(model.parameters()), "lr_scale": 1.0}]):
        params = [p for p in group["params"] if p.requires_grad]
        lr = cfg.lr * float(group.get("lr_scale", 1.0))
        groups += [{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay, "lr": lr},
                   {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0, "lr": lr}]
    groups = [g for g in groups if g["params"]] or [{"params": [], "lr": cfg.lr}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle" and total >= 4:
        # warm up over 20% of the steps, but at least two (OneCycleLR divides by the warm-up length)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups],
                                                        total_steps=total, pct_start=min(0.5, max(0.2, 2.0 / total)))
    elif cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return optimizer, scheduler


def make_grad_scaler(device, amp: bool):
    """A GradScaler where AMP runs in float16 (CUDA without bf16); None elsewhere."""
    import torch

    if device.type == "cuda" and amp and not torch.cuda.is_bf16_supported():
        return torch.amp.GradScaler("cuda")
    return None
