"""The one trainer, shared by every model plugin (plain functions, as torchvision's references).

What differs between plugins lives in the task object (loss, metrics, targets) and the plugin
config; this file never asks which model it is training.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rustlab import __version__
from rustlab.config import TrainConfig
from rustlab.errors import RustlabError


@dataclass
class PreparedData:
    source: object
    splits: dict  # split -> list[Example]
    decoded: dict  # split -> DecodedSet
    fingerprint: str

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [s for d in self.decoded.values() for s in d.skipped]


@dataclass
class RunResult:
    run_dir: Path
    best_epoch: int
    best_metrics: dict
    test_metrics: dict | None
    history: list[dict] = field(default_factory=list)
    skipped: list = field(default_factory=list)


def log_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_data(cfg: TrainConfig, task, image_size: int, log=log_line) -> PreparedData:
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits, split_counts

    source = load_source(cfg.data, negatives=cfg.negatives, task=task.name)
    splits = assign_splits(source, seed=cfg.seed)
    log(f"data {cfg.data}: {len(source.examples)} images, classes {source.class_names} (rust = "
        f"{source.class_names[source.rust_index]!r})")
    for note in source.notes:
        log(f"  {note}")
    for line in split_counts(splits, source.class_names).splitlines():
        log(f"  {line}")
    with_masks = task.target == "mask"
    decoded = {}
    for name, examples in splits.items():
        if examples:
            decoded[name] = load_decoded(examples, image_size, with_masks=with_masks, use_cache=cfg.cache,
                                         progress=sys.stderr.isatty())
            d = decoded[name]
            log(f"  {name}: {len(d)} decoded at {image_size}px in {d.seconds:.1f}s"
                f"{' (cache)' if d.from_cache else ''}, {d.nbytes / 2**20:.1f} MiB"
                f"{f', {len(d.skipped)} unreadable skipped' if d.skipped else ''}")
    if "train" not in decoded or len(decoded["train"]) == 0:
        raise RustlabError(f"--data {cfg.data}: no readable training images")
    if "validation" not in decoded or len(decoded["validation"]) == 0:
        raise RustlabError(f"--data {cfg.data}: too few images for a validation split")
    return PreparedData(source, splits, decoded, source.fingerprint())


def make_optimizer(model, cfg: TrainConfig, steps_per_epoch: int):
    import torch

    # no weight decay on biases and norm parameters
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle" and total >= 4:
        # warm up over 20% of the steps, but at least two (OneCycleLR divides by the warm-up length)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total,
                                                        pct_start=min(0.5, max(0.2, 2.0 / total)))
    elif cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return optimizer, scheduler


def train_one_epoch(model, loader, task, optimizer, scheduler, device, cfg: TrainConfig, rust_index: int,
                    scaler=None, progress=None) -> dict:
    import torch

    from rustlab.data.transforms import normalize
    from rustlab.device import autocast_context

    model.train()
    meter = task.new_meter(rust_index, None)
    for images, targets, labels in loader:
        images = normalize(images.to(device, non_blocking=True))
        targets = targets.to(device, non_blocking=True)
        with autocast_context(device, cfg.amp):
            outputs = model(images)
        loss = task.loss(outputs, targets, label_smoothing=cfg.label_smoothing)
        if not torch.isfinite(loss):
            raise RustlabError("training diverged (loss is not finite); try a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        meter.update(outputs, targets, labels == rust_index, loss=loss.detach())
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{float(loss):.3f}")
    return meter.compute()


def iterate_outputs(model, decoded, task, device, batch_size: int = 64, amp: bool = True):
    """Yield (outputs float32, targets, labels) over a DecodedSet in order, without augmentation."""
    import torch

    from rustlab.data.transforms import DecodedDataset, normalize
    from rustlab.device import autocast_context

    model.eval()
    loader = torch.utils.data.DataLoader(DecodedDataset(decoded, target=task.target), batch_size=batch_size)
    with torch.inference_mode():
        for images, targets, labels in loader:
            with autocast_context(device, amp):
                outputs = model(normalize(images.to(device)))
            yield outputs.float(), targets.to(device), labels


def evaluate_decoded(model, decoded, task, device, rust_index: int, batch_size: int = 64, amp: bool = True,
                     label_smoothing: float = 0.0, calibration: dict | None = None) -> dict:
    """Metrics of ``model`` on a DecodedSet (no augmentation)."""
    meter = task.new_meter(rust_index, calibration)
    for outputs, targets, labels in iterate_outputs(model, decoded, task, device, batch_size, amp):
        loss = task.loss(outputs, targets, label_smoothing=label_smoothing)
        meter.update(outputs, targets, labels == rust_index, loss=loss)
    return meter.compute()


def calibrate(model, decoded, task, device, rust_index: int, amp: bool = True) -> dict | None:
    """Post-training fit on validation data (e.g. a temperature, a rust-area threshold), if the task has one.

    Tasks opt in with ``calibrate(outputs, targets, rust_targets) -> dict``; the result is stored
    in the checkpoint as ``calibration`` and read back by metrics and ``interpret``."""
    import torch

    if not hasattr(task, "calibrate"):
        return None
    outs, tgts, rust = [], [], []
    for outputs, targets, labels in iterate_outputs(model, decoded, task, device, amp=amp):
        outs.append(outputs.cpu())
        tgts.append(targets.cpu())
        rust.append(labels == rust_index)
    return task.calibrate(torch.cat(outs), torch.cat(tgts), torch.cat(rust))


def _run_dir(cfg: TrainConfig) -> Path:
    out = Path(cfg.out).expanduser()
    if out.exists() and not out.is_dir():
        raise RustlabError(f"--out {out}: is a file, expected a folder")
    name = cfg.name or f"{cfg.model}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = out / name
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = out / f"{name}-{suffix}"
    try:
        run_dir.mkdir(parents=True)
    except OSError as exc:
        raise RustlabError(f"--out {out}: cannot create run folder ({exc.strerror})") from None
    return run_dir


def _is_better(metrics: dict, best: dict | None, monitor: str) -> bool:
    if best is None:
        return True
    a, b = metrics.get(monitor) or 0.0, best.get(monitor) or 0.0
    if a != b:
        return a > b
    return metrics.get("loss", math.inf) < best.get("loss", math.inf)  # tie: lower validation loss


def _scalar_metrics(prefix: str, metrics: dict) -> dict:
    return {f"{prefix}_{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "n"}


def train(cfg: TrainConfig, log=log_line) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data``; returns the run folder and its metrics."""
    import torch

    from rustlab.checkpoint import save_checkpoint
    from rustlab.data.transforms import MEAN, STD, DecodedDataset, build_augmentation
    from rustlab.device import resolve_device, seed_everything
    from rustlab.plots import plot_curves
    from rustlab.registry import get_model_spec, get_task

    cfg.validate()
    spec = get_model_spec(cfg.model)
    task = get_task(spec.task)
    device = resolve_device(cfg.device)
    base_config = spec.make_config(cfg.model_config)
    image_size = int(cfg.image_size or getattr(base_config, "image_size", 64))
    run_dir = _run_dir(cfg)
    seed_everything(cfg.seed)

    data = prepare_data(cfg, task, image_size, log=log)
    class_names, rust_index = data.source.class_names, data.source.rust_index
    overrides = dict(task.model_overrides(class_names))
    if hasattr(base_config, "image_size"):
        overrides["image_size"] = image_size
    model_config = spec.make_config(cfg.model_config, **overrides)
    seed_everything(cfg.seed)  # the model's init must not depend on how the data was read
    model = spec.build(model_config).to(device)

    generator = torch.Generator().manual_seed(cfg.seed)
    train_set = DecodedDataset(data.decoded["train"], target=task.target,
                               transform=build_augmentation(cfg.augment, image_size))
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_set) > cfg.batch_size,
        generator=generator, num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
        pin_memory=device.type == "cuda")
    optimizer, scheduler = make_optimizer(model, cfg, len(loader))
    scaler = None
    if device.type == "cuda" and cfg.amp and not torch.cuda.is_bf16_supported():
        scaler = torch.amp.GradScaler("cuda")

    import dataclasses

    meta = {
        "model": spec.name,
        "plugin": spec.source,
        "task": task.name,
        "model_config": dataclasses.asdict(model_config),
        "class_names": class_names,
        "rust_index": rust_index,
        "preprocessing": {"image_size": image_size, "mean": list(MEAN), "std": list(STD),
                          "resize": "square-bilinear", "decoder": "rustlab.data.images.load_square"},
        "data": {"spec": cfg.data, "fingerprint": data.fingerprint,
                 "counts": {k: len(v) for k, v in data.decoded.items()}},
        "train_args": cfg.to_dict(),
    }
    (run_dir / "config.json").write_text(json.dumps({**meta, "rustlab_version": __version__}, indent=2))
    log(f"model {spec.name} ({sum(p.numel() for p in model.parameters()):,} parameters) on {device}; "
        f"run folder {run_dir}")

    history, best, best_epoch, stale = [], None, 0, 0
    use_bar = sys.stderr.isatty()
    metrics_file = open(run_dir / "metrics.jsonl", "w")
    try:
        for epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()
            bar = None
            if use_bar:
                from tqdm import tqdm

                bar = tqdm(total=len(loader), desc=f"epoch {epoch}/{cfg.epochs}", leave=False, unit="batch")
            train_metrics = train_one_epoch(model, loader, task, optimizer, scheduler, device, cfg, rust_index,
                                            scaler, bar)
            if bar is not None:
                bar.close()
            val_metrics = evaluate_decoded(model, data.decoded["validation"], task, device, rust_index,
                                           amp=cfg.amp, label_smoothing=cfg.label_smoothing)
            row = {"epoch": epoch, **_scalar_metrics("train", train_metrics), **_scalar_metrics("val", val_metrics),
                   "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - start, 3)}
            history.append(row)
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()
            improved = _is_better(val_metrics, best, task.monitor)
            state = {f"model.{k}": v for k, v in model.state_dict().items()}
            epoch_meta = {**meta, "epoch": epoch, "metrics": {"validation": val_metrics}}
            if improved:
                best, best_epoch, stale = val_metrics, epoch, 0
                save_checkpoint(run_dir / "best.safetensors", state, epoch_meta)
            else:
                stale += 1
            save_checkpoint(run_dir / "last.safetensors", state, epoch_meta)
            log(f"epoch {epoch}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
                f"val_{task.monitor} {val_metrics.get(task.monitor, 0):.4f}{'  *best' if improved else ''}  "
                f"{row['seconds']:.1f}s")
            if stale >= cfg.patience:
                log(f"early stop: no better validation {task.monitor} for {cfg.patience} epochs")
                break
    finally:
        metrics_file.close()

    plot_curves(history, task.monitor, run_dir / "curves.png", title=f"{spec.name} on {cfg.data}")
    test_metrics = None
    from rustlab.checkpoint import build_model_from_checkpoint

    best_model, best_meta = build_model_from_checkpoint(run_dir / "best.safetensors")
    best_model.to(device)
    calibration = calibrate(best_model, data.decoded["validation"], task, device, rust_index, amp=cfg.amp)
    if calibration is not None:
        from rustlab.checkpoint import load_checkpoint

        state, _ = load_checkpoint(run_dir / "best.safetensors")
        best_meta.pop("path", None)
        save_checkpoint(run_dir / "best.safetensors", {f"model.{k}": v for k, v in state.items()},
                        {**best_meta, "calibration": calibration})
        log("calibration on validation: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in calibration.items()))
    if "test" in data.decoded and len(data.decoded["test"]):
        test_metrics = evaluate_decoded(best_model, data.decoded["test"], task, device, rust_index, amp=cfg.amp,
                                        calibration=calibration)
        (run_dir / "test_metrics.json").write_text(json.dumps(
            {"epoch": best_epoch, "split": "test", "data": cfg.data, **test_metrics}, indent=2))
        log(f"test ({len(data.decoded['test'])} images, best epoch {best_epoch}): "
            + "  ".join(f"{k} {v:.4f}" for k, v in test_metrics.items()
                        if isinstance(v, float) and k != "loss"))
    if data.skipped:
        log(f"skipped {len(data.skipped)} unreadable image(s):")
        for key, reason in data.skipped[:20]:
            log(f"  {key}: {reason}")
    log(f"checkpoint: {run_dir / 'best.safetensors'}")
    return RunResult(run_dir, best_epoch, best or {}, test_metrics, history, data.skipped)
