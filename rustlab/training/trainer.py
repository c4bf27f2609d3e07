"""The one trainer, shared by every model plugin (plain functions, as torchvision's references).

``train`` composes the public pieces of ``rustlab.training`` (data, model, step, run folder) and
``rustlab.inference.evaluate`` (evaluation passes, calibration); the benchmarks call the same pieces. What
differs between plugins lives in the task object and the plugin config: this file never asks
which model it is training.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rustlab import __version__
from rustlab.config import TrainConfig
from rustlab.errors import RustlabError
from rustlab.training.data import log_line


@dataclass
class RunResult:
    run_dir: Path
    best_epoch: int
    best_metrics: dict
    test_metrics: dict | None
    history: list[dict] = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (file, reason) of unreadable images
    partial: bool = False  # images were skipped: the CLI exits 3


def _quiet(*_args) -> None:
    pass


def _is_better(metrics: dict, best: dict | None, monitor: str) -> bool:
    if best is None:
        return True
    a, b = metrics.get(monitor) or 0.0, best.get(monitor) or 0.0
    if a != b:
        return a > b
    return metrics.get("loss", math.inf) < best.get("loss", math.inf)  # tie: lower validation loss


def _scalar_metrics(prefix: str, metrics: dict) -> dict:
    return {f"{prefix}_{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "n"}


def _load_weights(model, state) -> None:
    from rustlab.errors import CheckpointError

    expected = model.state_dict()
    wrong = sorted(set(expected) ^ set(state.model)) or [
        k for k in expected if tuple(expected[k].shape) != tuple(state.model[k].shape)]
    if wrong:
        raise CheckpointError(f"{state.path}: weights do not match the model config (e.g. {wrong[0]})")
    model.load_state_dict(state.model)


def checkpoint_meta(spec, task, model, model_config, data, preprocessing: dict, cfg: TrainConfig,
                    world_size: int) -> dict:
    """What every checkpoint of the run records: enough to rebuild, preprocess, map labels,
    recompute the data splits, and say where the starting weights came from."""
    meta = {
        "model": spec.name,
        "plugin": spec.source,
        "task": task.name,
        "model_config": dataclasses.asdict(model_config),
        "class_names": data.source.class_names,
        "rust_index": data.source.rust_index,
        "preprocessing": preprocessing,
        "data": {"spec": cfg.data, "fingerprint": data.fingerprint,
                 "counts": {k: len(v) for k, v in data.decoded.items()}, "skipped": len(data.skipped),
                 "sources": data.sources},
        "train_args": cfg.to_dict(),
        "processes": world_size,
        "tta": cfg.tta,
    }
    weights_source = getattr(model, "weights_source", None)  # a plugin's pretrained starting weights
    if weights_source:
        meta["pretrained"] = dict(weights_source)
    return meta


def train(cfg: TrainConfig, log=log_line, resume=None, stop_event=None) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data``; returns the run folder and its metrics.

    ``resume``: an interrupted run folder to continue from its train_state.safetensors (take
    ``cfg`` from ``rustlab.training.state.resume_config``). Under torchrun every process calls this
    and rank 0 writes the files. SIGINT/SIGTERM (or ``stop_event``, a threading.Event) stop
    training after the current step and raise Interrupted, whose message says how to resume.
    A model without trainable weights that has ``fit(images, labels, rust_index)`` is fitted once,
    in closed form, on the training split instead of stepped.
    """
    from rustlab.training import distributed
    from rustlab.registry import get_model_spec, get_task
    from rustlab.config import check_mode

    cfg.validate()
    if cfg.init and resume is None:
        from rustlab.training.init import apply_init

        apply_init(cfg)  # its model, config and input size
    spec = get_model_spec(cfg.model)
    task = get_task(spec.task)
    check_mode(cfg.tta, task.dense_output)  # before any data is read: a classifier has no flips to average
    dist = distributed.setup(cfg.device)
    try:
        return _Run(cfg, spec, task, dist, log if dist.is_main else _quiet, resume).fit(stop_event)
    finally:
        dist.close()


class _Run:
    """One training run: its pieces built once (``__init__``), then ``fit`` steps the epochs."""

    def __init__(self, cfg: TrainConfig, spec, task, dist, log, resume):
        from rustlab.training.state import check_resumable, load_train_state, remove_stale_temp_files
        from rustlab.training import RunFolder

        self.cfg, self.spec, self.task, self.dist, self.log = cfg, spec, task, dist, log
        self.device = dist.device
        self.state = state = None
        if resume is not None:
            self.state = state = load_train_state(resume)
            check_resumable(state, cfg)
        base_config = spec.make_config(cfg.model_config)
        image_size = int(cfg.image_size or getattr(base_config, "image_size", 64))
        if state is not None:
            self.folder = RunFolder(resume)
            if dist.is_main:
                remove_stale_temp_files(self.folder.path)
        else:
            # one folder per run, named by rank 0 (timestamps differ across processes and nodes)
            self.folder = RunFolder(dist.from_main(lambda: str(RunFolder.create(cfg.out, cfg.name, cfg.model))))
        try:
            self._build(image_size, base_config)
        except BaseException:
            if state is None and dist.is_main:  # left behind, it would push a rerun's --name to NAME-2
                self.folder.remove_if_empty()
            raise

    def _build(self, image_size: int, base_config) -> None:
        """Everything but the folder: data, model, optimizer (what bad input makes fail)."""
        from rustlab.device import seed_everything
        from rustlab.errors import CheckpointError
        from rustlab.training import (TrainStep, build_model, build_train_loader, input_preprocessing, is_closed_form,
                                      make_grad_scaler, make_optimizer, make_weight_average, prepare_data)
        from rustlab.training.state import Progress

        cfg, spec, task, dist, log, state, device = (self.cfg, self.spec, self.task, self.dist, self.log, self.state,
                                                     self.device)
        seed_everything(cfg.seed)

        # rank 0 decodes and fills the cache; the others then read it instead of decoding again
        # a classifier whose closed-form fit learns from masks (e.g. rust cells) gets the training split's
        train_masks = bool(getattr(base_config, "fit_uses_masks", False))
        self.data = data = dist.main_first(lambda: prepare_data(cfg, task, image_size, log=log,
                                                                train_masks=train_masks))
        if state is not None and data.fingerprint != state.checkpoint_meta.get("data", {}).get("fingerprint"):
            raise RustlabError(f"--resume {self.folder}: --data {cfg.data} changed since the run started "
                               "(its files differ); resuming would mix two data sets")
        self.rust_index = data.source.rust_index
        model, model_config = build_model(spec, task, data.source.class_names, image_size, cfg.model_config,
                                          device=device, seed=cfg.seed)
        self.call_sets = self._call_sets(model, read=dist.is_main)
        if state is not None:
            _load_weights(model, state)
        self.preprocessing = input_preprocessing(model_config, image_size)
        from rustlab.inference.layout import wants_channels_last

        channels_last = wants_channels_last(cfg.channels_last, spec.name, device)
        if channels_last:  # before DDP wraps it: DDP lays out its gradient buckets from the parameters
            import torch

            model.to(memory_format=torch.channels_last)
        self.closed_form = is_closed_form(model)
        if cfg.init and state is None:
            from rustlab.training.init import load_init_weights

            load_init_weights(model, cfg, data.source.class_names, self.closed_form)
        if self.closed_form:
            net = model  # every rank fits the same data identically; DDP refuses a model with nothing to train
        else:
            model, net = dist.wrap(model)  # net: what trains (DDP when distributed); model: what is saved
        self.model = model
        # what is scored and saved: the weight average under --ema, else the weights that train
        self.average, self.scored = None, model
        if cfg.ema and self.closed_form:
            log("note: --ema averages the weights of stepped training; this model is fitted in closed form")
        elif cfg.ema:
            self.average = make_weight_average(model, cfg.ema)
            if state is not None:
                if state.average is None:
                    raise CheckpointError(f"{state.path}: no weight average in it to resume --ema with")
                self.average.load_state_dict(state.average)
            self.scored = self.average.module
        self.loader = build_train_loader(data.decoded["train"], task, cfg, image_size, dist,
                                         pin_memory=device.type == "cuda", examples=data.splits["train"])
        self.optimizer, self.scheduler = make_optimizer(model, cfg, len(self.loader))
        self.scaler = make_grad_scaler(device, cfg.amp)
        if state is not None:
            try:
                self.optimizer.load_state_dict(state.optimizer)
                self.scheduler.load_state_dict(state.scheduler)
                if self.scaler is not None and state.scaler:
                    self.scaler.load_state_dict(state.scaler)
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise CheckpointError(f"{state.path}: optimizer state does not fit this model ({exc})") from None
        self.step = TrainStep(net, task, self.optimizer, self.scheduler, device, self.preprocessing, amp=cfg.amp,
                              label_smoothing=cfg.label_smoothing, scaler=self.scaler, channels_last=channels_last,
                              average=self.average)
        self.meta = checkpoint_meta(spec, task, model, model_config, data, self.preprocessing, cfg, dist.world_size)
        self.progress = state.progress if state is not None else Progress()

    def _call_sets(self, model, read: bool) -> list:
        """The --call-data photos for an image-call head, read now (``read``: by the process that fits
        it, rank 0): a wrong path fails before training."""
        from rustlab.training.image_call import (call_examples, check_both_kinds, has_image_call_head,
                                                 offers_image_call_head)

        head = has_image_call_head(model)
        if self.cfg.call_data and not offers_image_call_head(model):
            raise RustlabError(f"--call-data: model {self.spec.name} has no image-call head to fit "
                               "(unet-effnet-lite0 has one with --set image_call=head)")
        if self.cfg.call_data and not head:  # e.g. a recipe with call data, run with --set image_call=area
            self.log("note: --call-data is not used: this model's image_call is 'area', not 'head'")
        if not (head and read):
            return []
        sets = call_examples(self.data, self.cfg.call_data, self.cfg.data_split_seed, self.log,
                             corrections=self.cfg.corrections)
        check_both_kinds(self.data, sets)  # now, not after the epochs
        return sets

    def _fit_image_call(self) -> None:
        """A segmenter's image-call head, fitted on the best weights and saved with them."""
        from rustlab.inference.loading import build_model_from_checkpoint
        from rustlab.training.image_call import fit_image_call, has_image_call_head

        if not has_image_call_head(self.model):  # asked before reading the checkpoint: most runs have none
            return
        model, _ = build_model_from_checkpoint(self.folder / "best.safetensors", tta="none")
        info = fit_image_call(model.to(self.device), self.data, self.call_sets, self.preprocessing, self.device,
                              use_cache=self.cfg.cache)
        self.log("image-call head fitted: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in info.items()))
        self.folder.save_model("best.safetensors", model, self.meta, self.progress.best_epoch,
                               self.progress.best_metrics)

    def save_model(self, name: str, epoch: int, val_metrics) -> None:
        self.folder.save_model(name, self.scored, self.meta, epoch, val_metrics)

    def save_state(self) -> None:
        from rustlab.training.state import save_train_state

        save_train_state(self.folder.path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                         scaler=self.scaler, progress=self.progress, train_args=self.cfg.to_dict(),
                         checkpoint_meta=self.meta, world_size=self.dist.world_size, average=self.average)

    def evaluate(self, model, split: str, calibration=None, label_smoothing: float = 0.0) -> dict:
        from rustlab.inference.evaluate import evaluate_decoded

        return evaluate_decoded(model, self.data.decoded[split], self.task, self.device, self.rust_index,
                                self.preprocessing, amp=self.cfg.amp, label_smoothing=label_smoothing,
                                calibration=calibration)

    def fit(self, stop_event=None) -> RunResult:
        from rustlab.errors import Interrupted
        from rustlab.training.state import StopSignals

        cfg, dist, log, progress = self.cfg, self.dist, self.log, self.progress
        where = f"{self.device}" + (f" x {dist.world_size} processes ({dist.backend})" if dist.enabled else "")
        if dist.is_main:
            if self.state is None:
                self.folder.write_json("config.json", {**self.meta, "rustlab_version": __version__})
                self.save_state()  # epoch 0: a run stopped during its first epoch is resumable too
            else:
                self.folder.restore(progress, self.save_model, log)
            log(f"model {self.spec.name} ({sum(p.numel() for p in self.model.parameters()):,} parameters) on "
                f"{where}; run folder {self.folder}"
                + (f"; resuming after epoch {progress.epoch}" if self.state is not None else ""))
        metrics_file = self.folder.open_metrics() if dist.is_main else None
        stopper = StopSignals(log=log, event=stop_event)
        interrupted = False
        try:
            with stopper:
                for epoch in range(progress.epoch + 1, cfg.epochs + 1):
                    if progress.stale >= cfg.patience:
                        break  # a resumed run that had already stopped early
                    outcome = self._epoch(epoch, stopper, metrics_file)
                    if outcome == "interrupted":
                        interrupted = True
                    if outcome != "continue":
                        break
        finally:
            if metrics_file is not None:
                metrics_file.close()
        if interrupted:
            raise Interrupted(f"interrupted; resume with: rustlab train --resume {self.folder}", stopper.exit_code)
        # every rank waits for rank 0's finish and gets its result: a rank that left early and then
        # failed on its way out (rustlab.training.distributed.Dist.close) got rank 0 killed before its test pass
        return dist.from_main(self._finish)

    def _epoch(self, epoch: int, stopper, metrics_file) -> str:
        """Train and validate one epoch, then commit it; "continue", "stop" or "interrupted"."""
        from rustlab.device import mix_seed, seed_everything
        from rustlab.training import train_one_epoch
        from rustlab.training.step import closed_form_epoch

        cfg, dist, progress, task = self.cfg, self.dist, self.progress, self.task
        start = time.perf_counter()
        # this epoch's random numbers depend on (seed, epoch, rank) only: a resume draws the same
        seed_everything(mix_seed(cfg.seed, epoch, dist.rank))
        self.loader.set_epoch(epoch)
        bar = None
        if dist.is_main and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=len(self.loader), desc=f"epoch {epoch}/{cfg.epochs}", leave=False, unit="batch")
        if self.closed_form:
            train_metrics = closed_form_epoch(self.model, self.data, cfg, task, self.device, self.rust_index,
                                              self.preprocessing, self.log)
        else:
            train_metrics = train_one_epoch(self.step, self.loader, self.rust_index, bar, dist=dist, stop=stopper)
        if bar is not None:
            bar.close()
        if train_metrics is None:
            return "interrupted"
        # rank 0 scores the whole validation split (what one process reports); all ranks get it
        val_metrics = dist.from_main(lambda: self.evaluate(self.scored, "validation",
                                                           label_smoothing=cfg.label_smoothing))
        row = {"epoch": epoch, **_scalar_metrics("train", train_metrics), **_scalar_metrics("val", val_metrics),
               "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - start, 3)}
        improved = _is_better(val_metrics, progress.best_metrics, task.monitor)
        progress.history.append(row)
        progress.epoch, progress.last_metrics = epoch, val_metrics
        if improved:
            progress.best_metrics, progress.best_epoch, progress.stale = val_metrics, epoch, 0
        else:
            progress.stale += 1
        if dist.is_main:
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()
            self.save_state()  # the commit point: a resume continues after this epoch
            if improved:
                self.save_model("best.safetensors", epoch, val_metrics)
            self.save_model("last.safetensors", epoch, val_metrics)
            self.log(f"epoch {epoch}/{cfg.epochs}  train_loss {row['train_loss']:.4f}  "
                     f"val_loss {row['val_loss']:.4f}  val_{task.monitor} {val_metrics.get(task.monitor, 0):.4f}"
                     f"{'  *best' if improved else ''}  {row['seconds']:.1f}s")
        if progress.stale >= cfg.patience:
            self.log(f"early stop: no better validation {task.monitor} for {cfg.patience} epochs")
            return "stop"
        if self.closed_form:
            return "stop"  # another epoch would fit the same data to the same result
        if dist.any(stopper.requested)[0]:  # asked during validation or saving: this epoch is kept
            return "interrupted"
        return "continue"

    def _finish(self) -> RunResult:
        """Rank 0 after the last epoch: curves, calibration on validation, the test split."""
        from rustlab.inference.loading import build_model_from_checkpoint
        from rustlab.inference.evaluate import fit_calibration
        from rustlab.training.plots import plot_curves

        cfg, progress, data, log = self.cfg, self.progress, self.data, self.log
        plot_curves(progress.history, self.task.monitor, self.folder / "curves.png",
                    title=f"{self.spec.name} on {cfg.data}")
        self._fit_image_call()
        best_model, _ = build_model_from_checkpoint(self.folder / "best.safetensors")
        best_model.to(self.device)
        calibration = fit_calibration(best_model, data.decoded["validation"], self.task, self.device,
                                      self.rust_index, self.preprocessing, amp=cfg.amp)
        if calibration is not None:
            self.folder.add_calibration("best.safetensors", calibration)
            log("calibration on validation: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                           for k, v in calibration.items()))
        test_metrics = None
        if "test" in data.decoded and len(data.decoded["test"]):
            test_metrics = self.evaluate(best_model, "test", calibration=calibration)
            self.folder.write_json("test_metrics.json", {"epoch": progress.best_epoch, "split": "test",
                                                         "data": cfg.data, **test_metrics})
            log(f"test ({len(data.decoded['test'])} images, best epoch {progress.best_epoch}): "
                + "  ".join(f"{k} {v:.4f}" for k, v in test_metrics.items()
                            if isinstance(v, float) and k != "loss"))
        progress.complete = True
        self.save_state()
        if data.skipped:
            self.folder.write_skipped(data.skipped, log)
        log(f"checkpoint: {self.folder / 'best.safetensors'}")
        # a partial result is reported by exit code 3, except under torchrun, which would take a
        # non-zero exit for a crashed worker (and restart the job with --max-restarts)
        return RunResult(self.folder.path, progress.best_epoch, progress.best_metrics or {}, test_metrics,
                         progress.history, data.skipped, partial=bool(data.skipped) and not self.dist.enabled)
