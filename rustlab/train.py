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
    skipped: list = field(default_factory=list)  # (file, reason) of unreadable images
    partial: bool = False  # images were skipped: the CLI exits 3


def log_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_data(cfg: TrainConfig, task, image_size: int, log=log_line) -> PreparedData:
    from rustlab.data.cache import load_decoded
    from rustlab.data.sources import load_source
    from rustlab.data.splits import assign_splits, split_counts

    source = load_source(cfg.data, negatives=cfg.negatives, task=task.name)
    splits = assign_splits(source, seed=cfg.data_split_seed)
    fingerprint = source.fingerprint()
    if cfg.extra_data:
        from rustlab.data.mixing import add_extra_sources

        fingerprint = add_extra_sources(source, splits, cfg.extra_data, cfg.data_split_seed, task.name)
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
    return PreparedData(source, splits, decoded, fingerprint)


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
                    scaler=None, progress=None, dist=None, stop=None) -> dict | None:
    """One pass over ``loader``; the epoch's training metrics, or None when ``stop`` asked to stop.

    Distributed: every rank's outputs are gathered at each step, so the metrics are those of the
    whole global batch (what one process would report), and a stop request or a non-finite loss
    on any rank stops all of them at the same step (a rank left alone would wait forever)."""
    import torch

    from rustlab.data.transforms import normalize
    from rustlab.device import autocast_context

    distributed = dist is not None and dist.enabled
    model.train()
    meter = task.new_meter(rust_index, None)
    for images, targets, labels in loader:
        images = normalize(images.to(device, non_blocking=True))
        targets = targets.to(device, non_blocking=True)
        with autocast_context(device, cfg.amp):
            outputs = model(images)
        loss = task.loss(outputs, targets, label_smoothing=cfg.label_smoothing)
        bad = not bool(torch.isfinite(loss))
        asked = stop is not None and stop.requested
        if distributed:
            bad, asked = dist.any(bad, asked)
        if bad:
            raise RustlabError("training diverged (loss is not finite); try a lower --lr")
        if asked:
            return None  # abandon this step: the state of the last completed epoch is on disk
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        if distributed:
            with torch.no_grad():
                outputs = dist.gather_cat(outputs.detach().float())
                targets = dist.gather_cat(targets)
                labels = dist.gather_cat(labels.to(device))
                loss = task.loss(outputs, targets, label_smoothing=cfg.label_smoothing)
        meter.update(outputs, targets, labels.cpu() == rust_index, loss=loss.detach())
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


def _fit_closed_form(model, decoded, task, device, rust_index: int, cfg: TrainConfig, log) -> dict:
    """``model.fit`` on the (unaugmented) training split; its metrics there, as the epoch's train metrics."""
    info = model.fit(decoded.images.to(device), decoded.labels.to(device), rust_index)
    if isinstance(info, dict) and info:
        log("fit on the training split: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in info.items()))
    return evaluate_decoded(model, decoded, task, device, rust_index, amp=cfg.amp,
                            label_smoothing=cfg.label_smoothing)


def _load_weights(model, state) -> None:
    from rustlab.errors import CheckpointError

    expected = model.state_dict()
    wrong = sorted(set(expected) ^ set(state.model)) or [
        k for k in expected if tuple(expected[k].shape) != tuple(state.model[k].shape)]
    if wrong:
        raise CheckpointError(f"{state.path}: weights do not match the model config (e.g. {wrong[0]})")
    model.load_state_dict(state.model)


def _restore_run_files(run_dir: Path, progress, save_model_checkpoint, log) -> None:
    """Make the run folder agree with the resumed state (the commit point of the last epoch).

    metrics.jsonl may hold a row of the epoch that was running, and best/last.safetensors may
    predate the state, when the kill fell between the state's write and theirs."""
    from rustlab.checkpoint import atomic_write, read_metadata
    from rustlab.errors import CheckpointError

    rows = "".join(json.dumps(row) + "\n" for row in progress.history)
    atomic_write(run_dir / "metrics.jsonl", lambda tmp: Path(tmp).write_text(rows))
    if progress.epoch == 0:
        return

    def epoch_of(name):
        try:
            return read_metadata(run_dir / name).get("epoch")
        except CheckpointError:
            return None

    if progress.best_epoch == progress.epoch and epoch_of("best.safetensors") != progress.epoch:
        save_model_checkpoint("best.safetensors", progress.epoch, progress.best_metrics)
    elif epoch_of("best.safetensors") != progress.best_epoch:
        log(f"warning: {run_dir / 'best.safetensors'} is not the best epoch ({progress.best_epoch}) "
            "of the training state; it will be replaced when validation improves")
    if epoch_of("last.safetensors") != progress.epoch:
        save_model_checkpoint("last.safetensors", progress.epoch, progress.last_metrics)


def _quiet(*_args) -> None:
    pass


def train(cfg: TrainConfig, log=log_line, resume=None, stop_event=None) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data``; returns the run folder and its metrics.

    ``resume``: an interrupted run folder to continue from its train_state.safetensors (take
    ``cfg`` from ``rustlab.train_state.resume_config``). Under torchrun every process calls this
    and rank 0 writes the files. SIGINT/SIGTERM (or ``stop_event``, a threading.Event) stop
    training after the current step and raise Interrupted, whose message says how to resume.
    A model without trainable weights that has ``fit(images, labels, rust_index)`` is fitted once,
    in closed form, on the training split instead of stepped.
    """
    from rustlab import distributed
    from rustlab.registry import get_model_spec, get_task

    cfg.validate()
    spec = get_model_spec(cfg.model)
    task = get_task(spec.task)
    dist = distributed.setup(cfg.device)
    try:
        return _train(cfg, spec, task, dist, log if dist.is_main else _quiet, resume, stop_event)
    finally:
        dist.close()


def _train(cfg: TrainConfig, spec, task, dist, log, resume, stop_event) -> RunResult:
    import dataclasses

    import torch

    from rustlab.checkpoint import build_model_from_checkpoint, load_checkpoint, save_checkpoint
    from rustlab.data.transforms import MEAN, STD, DecodedDataset, build_augmentation
    from rustlab.device import seed_everything
    from rustlab.distributed import KeyedAugmentation, mix_seed
    from rustlab.errors import CheckpointError, Interrupted
    from rustlab.plots import plot_curves
    from rustlab.train_state import (Progress, StopSignals, check_resumable, load_train_state,
                                     remove_stale_temp_files, save_train_state)

    device = dist.device
    state = None
    if resume is not None:
        state = load_train_state(resume)
        check_resumable(state, cfg)
    base_config = spec.make_config(cfg.model_config)
    image_size = int(cfg.image_size or getattr(base_config, "image_size", 64))
    per_rank_batch = dist.per_rank_batch(cfg.batch_size)
    if state is not None:
        run_dir = Path(resume)
        if dist.is_main:
            remove_stale_temp_files(run_dir)
    else:
        # one folder per run, named by rank 0 (timestamps differ across processes and nodes)
        run_dir = Path(dist.from_main(lambda: str(_run_dir(cfg))))
    seed_everything(cfg.seed)

    # rank 0 decodes and fills the cache; the others then read it instead of decoding again
    data = dist.main_first(lambda: prepare_data(cfg, task, image_size, log=log))
    if state is not None and data.fingerprint != state.checkpoint_meta.get("data", {}).get("fingerprint"):
        raise RustlabError(f"--resume {run_dir}: --data {cfg.data} changed since the run started "
                           "(its files differ); resuming would mix two data sets")
    class_names, rust_index = data.source.class_names, data.source.rust_index
    overrides = dict(task.model_overrides(class_names))
    if hasattr(base_config, "image_size"):
        overrides["image_size"] = image_size
    model_config = spec.make_config(cfg.model_config, **overrides)
    seed_everything(cfg.seed)  # the model's init must not depend on how the data was read
    model = spec.build(model_config).to(device)
    if state is not None:
        _load_weights(model, state)
    # A model without trainable weights that can ``fit(images, labels, rust_index)`` (e.g. the
    # colour rule) is fitted in closed form on the training split, once, instead of stepped.
    closed_form = callable(getattr(model, "fit", None)) and not any(p.requires_grad for p in model.parameters())
    if closed_form:
        net = model  # every rank fits the same data identically; DDP refuses a model with nothing to train
    else:
        model, net = dist.wrap(model)  # net: what trains (DDP when distributed); model: what is saved

    train_set = KeyedAugmentation(DecodedDataset(data.decoded["train"], target=task.target,
                                                 transform=build_augmentation(cfg.augment, image_size)), cfg.seed)
    sampler = dist.sampler(train_set, seed=cfg.seed,
                           balance_labels=data.decoded["train"].labels.tolist() if cfg.balance else None)
    # Workers are not persistent: each epoch's workers are forked after set_epoch, so they see it.
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=per_rank_batch, sampler=sampler, drop_last=len(train_set) > cfg.batch_size,
        num_workers=cfg.workers, pin_memory=device.type == "cuda")
    optimizer, scheduler = make_optimizer(model, cfg, len(loader))
    scaler = None
    if device.type == "cuda" and cfg.amp and not torch.cuda.is_bf16_supported():
        scaler = torch.amp.GradScaler("cuda")
    if state is not None:
        try:
            optimizer.load_state_dict(state.optimizer)
            scheduler.load_state_dict(state.scheduler)
            if scaler is not None and state.scaler:
                scaler.load_state_dict(state.scaler)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{state.path}: optimizer state does not fit this model ({exc})") from None

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
                 "counts": {k: len(v) for k, v in data.decoded.items()}, "skipped": len(data.skipped)},
        "train_args": cfg.to_dict(),
        "processes": dist.world_size,
    }
    progress = state.progress if state is not None else Progress()
    history = progress.history

    def save_model_checkpoint(name: str, epoch: int, val_metrics):
        save_checkpoint(run_dir / name, {f"model.{k}": v for k, v in model.state_dict().items()},
                        {**meta, "epoch": epoch, "metrics": {"validation": val_metrics}})

    def save_state():
        save_train_state(run_dir, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                         progress=progress, train_args=cfg.to_dict(), checkpoint_meta=meta,
                         world_size=dist.world_size)

    where = f"{device}" + (f" x {dist.world_size} processes ({dist.backend})" if dist.enabled else "")
    if dist.is_main:
        if state is None:
            (run_dir / "config.json").write_text(json.dumps({**meta, "rustlab_version": __version__}, indent=2))
            save_state()  # epoch 0: a run stopped during its first epoch is resumable too
        else:
            _restore_run_files(run_dir, progress, save_model_checkpoint, log)
        log(f"model {spec.name} ({sum(p.numel() for p in model.parameters()):,} parameters) on {where}; "
            f"run folder {run_dir}" + (f"; resuming after epoch {progress.epoch}" if state is not None else ""))

    use_bar = dist.is_main and sys.stderr.isatty()
    metrics_file = open(run_dir / "metrics.jsonl", "a") if dist.is_main else None
    interrupted = False
    stopper = StopSignals(log=log, event=stop_event)
    try:
        with stopper:
            for epoch in range(progress.epoch + 1, cfg.epochs + 1):
                if progress.stale >= cfg.patience:
                    break  # a resumed run that had already stopped early
                start = time.perf_counter()
                # this epoch's random numbers depend on (seed, epoch, rank) only: a resume draws the same
                seed_everything(mix_seed(cfg.seed, epoch, dist.rank))
                sampler.set_epoch(epoch)
                train_set.set_epoch(epoch)
                bar = None
                if use_bar:
                    from tqdm import tqdm

                    bar = tqdm(total=len(loader), desc=f"epoch {epoch}/{cfg.epochs}", leave=False, unit="batch")
                if closed_form:
                    train_metrics = _fit_closed_form(model, data.decoded["train"], task, device, rust_index, cfg, log)
                else:
                    train_metrics = train_one_epoch(net, loader, task, optimizer, scheduler, device, cfg, rust_index,
                                                    scaler, bar, dist=dist, stop=stopper)
                if bar is not None:
                    bar.close()
                if train_metrics is None:
                    interrupted = True
                    break
                # rank 0 scores the whole validation split (what one process reports); all ranks get it
                val_metrics = dist.from_main(lambda: evaluate_decoded(
                    model, data.decoded["validation"], task, device, rust_index, amp=cfg.amp,
                    label_smoothing=cfg.label_smoothing))
                row = {"epoch": epoch, **_scalar_metrics("train", train_metrics),
                       **_scalar_metrics("val", val_metrics), "lr": optimizer.param_groups[0]["lr"],
                       "seconds": round(time.perf_counter() - start, 3)}
                improved = _is_better(val_metrics, progress.best_metrics, task.monitor)
                history.append(row)
                progress.epoch, progress.last_metrics = epoch, val_metrics
                if improved:
                    progress.best_metrics, progress.best_epoch, progress.stale = val_metrics, epoch, 0
                else:
                    progress.stale += 1
                if dist.is_main:
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    save_state()  # the commit point: a resume continues after this epoch
                    if improved:
                        save_model_checkpoint("best.safetensors", epoch, val_metrics)
                    save_model_checkpoint("last.safetensors", epoch, val_metrics)
                    log(f"epoch {epoch}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  "
                        f"val_loss {row['val_loss']:.4f}  val_{task.monitor} {val_metrics.get(task.monitor, 0):.4f}"
                        f"{'  *best' if improved else ''}  {row['seconds']:.1f}s")
                if progress.stale >= cfg.patience:
                    log(f"early stop: no better validation {task.monitor} for {cfg.patience} epochs")
                    break
                if closed_form:
                    break  # another epoch would fit the same data to the same result
                if dist.any(stopper.requested)[0]:  # asked during validation or saving: this epoch is kept
                    interrupted = True
                    break
    finally:
        if metrics_file is not None:
            metrics_file.close()
    if interrupted:
        raise Interrupted(f"interrupted; resume with: rustlab train --resume {run_dir}", stopper.exit_code)
    if not dist.is_main:
        return RunResult(run_dir, progress.best_epoch, progress.best_metrics or {}, None, history)

    plot_curves(history, task.monitor, run_dir / "curves.png", title=f"{spec.name} on {cfg.data}")
    best_epoch = progress.best_epoch
    test_metrics = None
    best_model, best_meta = build_model_from_checkpoint(run_dir / "best.safetensors")
    best_model.to(device)
    calibration = calibrate(best_model, data.decoded["validation"], task, device, rust_index, amp=cfg.amp)
    if calibration is not None:
        state_dict, _ = load_checkpoint(run_dir / "best.safetensors")
        best_meta.pop("path", None)
        save_checkpoint(run_dir / "best.safetensors", {f"model.{k}": v for k, v in state_dict.items()},
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
    progress.complete = True
    save_state()
    if data.skipped:
        (run_dir / "skipped.txt").write_text("".join(f"{key}\t{reason}\n" for key, reason in data.skipped))
        log(f"warning: skipped {len(data.skipped)} unreadable image(s) (all listed in {run_dir / 'skipped.txt'}):")
        for key, reason in data.skipped[:20]:
            log(f"  {key}: {reason}")
        if len(data.skipped) > 20:
            log(f"  ... and {len(data.skipped) - 20} more")
    log(f"checkpoint: {run_dir / 'best.safetensors'}")
    # a partial result is reported by exit code 3, except under torchrun, which would take a
    # non-zero exit for a crashed worker (and restart the job with --max-restarts)
    return RunResult(run_dir, best_epoch, progress.best_metrics or {}, test_metrics, history, data.skipped,
                     partial=bool(data.skipped) and not dist.enabled)
