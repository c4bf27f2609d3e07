"""One training step and one epoch of them: the code `rustlab train` and `rustlab bench` time."""

from __future__ import annotations

from rustlab.errors import RustlabError


class TrainStep:
    """Normalise, forward (autocast on CUDA), the task's loss, backward, optimiser and LR step.

    ``step(images, targets)`` takes a uint8 batch and its targets and returns (outputs, targets,
    loss) on the device;
    ``check(bad) -> (bad, stop)`` (optional) lets the caller agree across processes, between the
    loss and the backward pass, on a non-finite loss or a stop request (then it returns None).
    ``average`` (a rustlab.training.ema.WeightAverage, optional) is updated after every step."""

    def __init__(self, net, task, optimizer, scheduler, device, preprocessing: dict, amp: bool = True,
                 label_smoothing: float = 0.0, scaler=None, channels_last: bool = False, average=None):
        self.net, self.task, self.optimizer, self.scheduler = net, task, optimizer, scheduler
        self.average = average
        self.device, self.amp, self.scaler = device, amp, scaler
        self.mean, self.std = preprocessing["mean"], preprocessing["std"]
        self.label_smoothing = label_smoothing
        # NHWC weights and inputs (rustlab.inference.layout.wants_channels_last decides per model): the
        # convolutions then run without layout conversions where the backend prefers NHWC
        self.channels_last = bool(channels_last)
        if self.channels_last:
            import torch

            net.to(memory_format=torch.channels_last)

    def inputs(self, images):
        import torch

        from rustlab.data.transforms import normalize

        x = normalize(images.to(self.device, non_blocking=True), self.mean, self.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __call__(self, images, targets, check=None):
        import torch

        from rustlab.device import autocast_context

        x = self.inputs(images)
        targets = targets.to(self.device, non_blocking=True)
        with autocast_context(self.device, self.amp):
            outputs = self.net(x)
        loss = self.task.loss(outputs, targets, label_smoothing=self.label_smoothing)
        bad, stop = not bool(torch.isfinite(loss)), False
        if check is not None:
            bad, stop = check(bad)
        if bad:
            raise RustlabError("training diverged (loss is not finite); try a lower --lr")
        if stop:
            return None  # abandon this step: the state of the last completed epoch is on disk
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        if self.average is not None:
            self.average.update()
        return outputs, targets, loss


def train_one_epoch(step: TrainStep, loader, rust_index: int, progress=None, dist=None, stop=None) -> dict | None:
    """One pass over ``loader``; the epoch's training metrics, or None when ``stop`` asked to stop.

    Distributed: every rank's outputs are gathered at each step, so the metrics are those of the
    whole global batch (what one process would report), and a stop request or a non-finite loss
    on any rank stops all of them at the same step (a rank left alone would wait forever)."""
    import torch

    distributed = dist is not None and dist.enabled
    task = step.task

    def check(bad):
        asked = stop is not None and stop.requested
        return tuple(dist.any(bad, asked)) if distributed else (bad, asked)

    step.net.train()
    meter = task.new_meter(rust_index, None)
    for images, targets, labels in loader:
        done = step(images, targets, check)
        if done is None:
            return None
        outputs, targets, loss = done
        loss = loss.detach()  # for metrics and the bar only: the step has already used its graph
        if distributed:
            with torch.no_grad():
                outputs = dist.gather_cat(outputs.detach().float())
                targets = dist.gather_cat(targets)
                labels = dist.gather_cat(labels.to(step.device))
                loss = task.loss(outputs, targets, label_smoothing=step.label_smoothing)
        meter.update(outputs, targets, labels.cpu() == rust_index, loss=loss)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{float(loss):.3f}")
    return meter.compute()


def fit_closed_form(model, decoded, task, device, rust_index: int, preprocessing: dict, amp: bool = True,
                    log=None, balance_groups=None, sources=None) -> dict:
    """The training "epoch" of a model with nothing to step (e.g. the colour rule):
    ``model.fit(images, labels, rust_index)`` on the unaugmented training split, once. Returns
    its metrics there as the epoch's training metrics.

    ``balance_groups`` (the group of every image under the run's ``--balance``, or None) become
    per-image weights 1 / group size, passed as ``sample_weight`` to a ``fit`` that takes it: the
    closed-form counterpart of the balanced sampler. A ``fit`` that takes ``masks`` gets the split's
    masks where they were decoded, and one that takes ``sources`` gets each image's source."""
    import inspect

    from rustlab.data.sampling import group_weights
    from rustlab.inference.evaluate import evaluate_decoded

    kwargs = {}
    if balance_groups is not None:
        if "sample_weight" in inspect.signature(model.fit).parameters:
            kwargs["sample_weight"] = group_weights(balance_groups)
        elif log is not None:
            log("note: this model's fit takes no sample weights; --balance does not apply to it")
    takes = inspect.signature(model.fit).parameters
    if "masks" in takes and decoded.masks is not None:
        kwargs["masks"] = decoded.masks.to("cpu")
    if "sources" in takes and sources is not None:
        kwargs["sources"] = sources
    info = model.fit(decoded.images.to(device), decoded.labels.to(device), rust_index, **kwargs)
    if log is not None and isinstance(info, dict) and info:
        log("fit on the training split: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in info.items()))
    return evaluate_decoded(model, decoded, task, device, rust_index, preprocessing, amp=amp)


def closed_form_epoch(model, data, cfg, task, device, rust_index: int, preprocessing: dict, log=None) -> dict:
    """The one "epoch" of a closed-form model: fitted on the training split, or under ``--init``
    its fitted parts kept and its final call refitted (rustlab.training.init)."""
    from rustlab.training.data import balance_groups, image_sources

    train, examples = data.decoded["train"], data.splits["train"]
    groups = balance_groups(train, cfg.balance, examples)
    if cfg.init:
        from rustlab.data.sampling import group_weights
        from rustlab.training.init import adapt_closed_form

        return adapt_closed_form(model, train, task, device, rust_index, preprocessing, cfg.amp, log,
                                 group_weights(groups) if groups is not None else None)
    return fit_closed_form(model, train, task, device, rust_index, preprocessing, cfg.amp, log, groups,
                           image_sources(train, examples))


def is_closed_form(model) -> bool:
    """A model without trainable weights that can ``fit(images, labels, rust_index)``."""
    return callable(getattr(model, "fit", None)) and not any(p.requires_grad for p in model.parameters())
