"""Training throughput of one model, one batch size, one training split, three ways:

- naive: the seed's pipeline: a Dataset that opens and resizes each JPEG with PIL on every
  access, a default shuffling DataLoader;
- rustlab: the trainer's own loader (``rustlab.training.build_train_loader``: decode-once cache,
  keyed uint8 augmentation, its sampler); variants (workers, channels_last) show what each buys;
- bound: the same model on random uint8 batches already on the device: compute only.

All three feed the trainer's own epoch loop (``rustlab.training.train_one_epoch``) and step
(``TrainStep``, with ``build_model`` and ``make_optimizer``), timed step by step through
``timing.StepClock``; nothing here copies the trainer, so a change to training changes these
numbers too. The ratios between rows isolate the data pipeline.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

from rustlab.bench.speed_data import CacheStats, DecodeStats, PipelineResult
from rustlab.bench.speed_predict import camera_jpeg, file_like
from rustlab.bench.timing import CpuMeter, StepClock, sync_for, time_loop
from rustlab.errors import RustlabError


class NaiveDataset:
    """The seed's pipeline: open, decode and resize every image with PIL on every access.

    It yields uint8 tensors, as the trainer's loader does: normalisation happens in the
    trainer's step, the same for all three pipelines."""

    def __init__(self, examples, size: int):
        from torchvision import transforms

        self.items = [(ex.image, int(ex.label)) for ex in examples]
        self.transform = transforms.Compose([transforms.Resize((size, size)), transforms.PILToTensor()])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        source, label = self.items[i]
        return self.transform(Image.open(file_like(source)).convert("RGB")), label, label


@contextmanager
def scratch_cache():
    """RUSTLAB_CACHE pointed at a new empty folder: a cold first run, whatever the user's cache holds."""
    old = os.environ.get("RUSTLAB_CACHE")
    with tempfile.TemporaryDirectory(prefix="rustlab-bench-cache-") as tmp:
        os.environ["RUSTLAB_CACHE"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("RUSTLAB_CACHE", None)
            else:
                os.environ["RUSTLAB_CACHE"] = old


def default_data() -> str:
    """../shared/data/corrosion-cls beside the project (seen from the cwd or this checkout), else builtin."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root.parent / "shared" / "data" / "corrosion-cls"
        if candidate.is_dir():
            return str(candidate)
    return "builtin"


def _epochs(loader):
    """Batches forever, epoch after epoch, telling the loader each new epoch as the trainer does
    (its workers are forked again, its sampler and augmentation reseeded)."""
    for epoch in itertools.count(1):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from loader


class TrainingBench:
    """One model, batch size and training split, shared by every pipeline it measures."""

    def __init__(self, data: str | None = None, model: str = "cnn", image_size: int | None = None,
                 batch_size: int | None = None, model_config: dict | None = None, device: str = "cpu",
                 augment: str | None = None, seed: int = 0, amp: bool | None = None, pin_memory: bool | None = None):
        from rustlab.config import TrainConfig
        from rustlab.device import resolve_device
        from rustlab.registry import get_model_spec, get_task

        defaults = TrainConfig()
        self.spec = get_model_spec(model)
        self.task = get_task(self.spec.task)
        if self.task.target != "label":
            raise RustlabError(f"bench speed: training throughput is measured on classification models; "
                               f"{model!r} is a {self.spec.task} model")
        self.device = resolve_device(device)
        self.cfg = TrainConfig(model=model, data=data or default_data(), epochs=1,
                               batch_size=int(batch_size or defaults.batch_size), augment=augment or defaults.augment,
                               seed=seed, device=str(self.device), model_config=dict(model_config or {}),
                               amp=defaults.amp if amp is None else bool(amp))
        self.cfg.validate()
        base = self.spec.make_config(self.cfg.model_config)
        self.image_size = int(image_size or getattr(base, "image_size", 64))
        self.pin_memory = self.device.type == "cuda" if pin_memory is None else bool(pin_memory)
        self.prepared = None
        self.examples = []

    @property
    def data(self) -> str:
        return self.cfg.data

    @property
    def batch_size(self) -> int:
        return self.cfg.batch_size

    @property
    def settings(self) -> dict:
        return {"data": self.data, "model": self.spec.name, "model_config": self.cfg.model_config,
                "image_size": self.image_size, "batch_size": self.batch_size, "augment": self.cfg.augment,
                "train_images": len(self.examples) if self.prepared else None, "device": str(self.device),
                "amp": self.cfg.amp and self.device.type == "cuda", "pin_memory": self.pin_memory}

    # -- data -------------------------------------------------------------------------------------------

    def build_cache(self) -> CacheStats:
        """The trainer's data preparation twice in a scratch cache: a cold first run, then a warm one."""
        from rustlab.data.locations import cache_dir
        from rustlab.data.sources import load_source
        from rustlab.training import prepare_data

        # read once in the user's cache first: a builtin:N set is generated there, not timed as decoding
        load_source(self.cfg.data, needs_masks=self.task.requires_masks)
        generated = cache_dir() / "builtin"
        meter = CpuMeter()
        with scratch_cache() as folder:
            if generated.is_dir():
                (folder / "builtin").symlink_to(generated, target_is_directory=True)
            first = prepare_data(self.cfg, self.task, self.image_size, log=lambda *_: None)
            second = prepare_data(self.cfg, self.task, self.image_size, log=lambda *_: None)
            disk = sum(f.stat().st_size for f in (folder / "decoded").rglob("*") if f.is_file())
        self.prepared = second
        kept = set(second.decoded["train"].keys)  # naive and rustlab read the same readable images
        self.examples = [ex for ex in second.splits["train"] if ex.key in kept and ex.label is not None]
        if len(self.examples) < 2:
            raise RustlabError(f"--data {self.data}: too few labelled training images to measure")
        sets = second.decoded.values()
        return CacheStats(sum(len(d) for d in sets), self.image_size, sum(d.seconds for d in first.decoded.values()),
                          sum(d.seconds for d in sets), all(d.from_cache for d in sets), sum(d.nbytes for d in sets),
                          disk, {name: len(d) for name, d in second.decoded.items()}, meter.others_cores())

    def _ready(self):
        if self.prepared is None:
            self.build_cache()
        return self.prepared

    def decode_stats(self, n: int = 64, camera_repeats: int = 5) -> DecodeStats:
        """Per-image decode + resize: PIL's full decode (the seed) against JPEG draft mode (rustlab)."""
        from PIL import Image

        from rustlab.data.images import load_square

        self._ready()
        size = self.image_size

        def full(source):
            Image.open(file_like(source)).convert("RGB").resize((size, size), Image.BILINEAR)
            return 1

        def draft(source):
            load_square(source, size)
            return 1

        meter = CpuMeter()
        sample = [ex.image for ex in self.examples[:n]]
        full_t = time_loop(full, iter(sample), len(sample), 0)
        draft_t = time_loop(draft, iter(sample), len(sample), 0)
        stats = DecodeStats(len(sample), size, full_t.median_ms, draft_t.median_ms)
        if camera_repeats:  # corrosion-cls was shrunk to <= 512 px; a user's camera photo is far larger
            photo = itertools.repeat(camera_jpeg())
            stats.camera_full_ms = time_loop(full, photo, camera_repeats, 1).median_ms
            stats.camera_draft_ms = time_loop(draft, photo, camera_repeats, 1).median_ms
        stats.others_cores = meter.others_cores()
        return stats

    def naive_batches(self):
        import torch

        return _epochs(torch.utils.data.DataLoader(NaiveDataset(self.examples, self.image_size),
                                                   batch_size=self.batch_size, shuffle=True,
                                                   pin_memory=self.pin_memory))

    def rustlab_batches(self, workers: int):
        """The trainer's training loader (one process), epoch after epoch."""
        from rustlab.training import build_train_loader

        train = self._ready().decoded["train"]
        return _epochs(build_train_loader(train, self.task, self.cfg, self.image_size, workers=workers,
                                          pin_memory=self.pin_memory))

    def bound_batches(self, count: int = 4):
        """A few random uint8 batches already on the device, reused in turn."""
        import torch

        g = torch.Generator().manual_seed(self.cfg.seed)
        s, n = self.image_size, self.batch_size
        classes = len(self._ready().source.class_names)
        batches = []
        for _ in range(count):
            images = torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=g).to(self.device)
            labels = torch.randint(0, classes, (n,), generator=g)
            batches.append((images, labels.to(self.device), labels))
        return itertools.cycle(batches)

    # -- the trainer's step ---------------------------------------------------------------------------

    def train_step(self, channels_last: bool, total_steps: int, compiled: bool = False):
        """The trainer's model, optimiser and ``TrainStep``, as rustlab.training.trainer builds them."""
        import torch

        from rustlab.training import (
            TrainStep,
            build_model,
            input_preprocessing,
            make_grad_scaler,
            make_optimizer,
        )

        data = self._ready()
        model, config = build_model(self.spec, self.task, data.source.class_names, self.image_size,
                                    self.cfg.model_config, device=self.device, seed=self.cfg.seed)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        net = torch.compile(model) if compiled else model  # a bench option: the trainer does not compile
        optimizer, scheduler = make_optimizer(model, self.cfg, total_steps)  # cfg.epochs is 1
        return TrainStep(net, self.task, optimizer, scheduler, self.device,
                         input_preprocessing(config, self.image_size), amp=self.cfg.amp,
                         label_smoothing=self.cfg.label_smoothing, scaler=make_grad_scaler(self.device, self.cfg.amp),
                         channels_last=channels_last)

    def _measure(self, kind, batches, steps, warmup, channels_last=False, workers=0, data_only=None,
                 compiled=False) -> PipelineResult:
        """Train on ``batches`` with the trainer's epoch loop; then, given ``data_only`` (fresh
        batches of the same pipeline), time the pipeline alone: how fast it could feed a model
        that cost nothing."""
        from rustlab.training import train_one_epoch

        step = self.train_step(channels_last, steps + warmup + 1, compiled)
        cuda = self.device.type == "cuda"
        if cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        clock = StepClock(sync_for(self.device))
        meter = CpuMeter()
        with warnings.catch_warnings():
            # train_one_epoch formats float(loss) for its progress bar without detaching it first
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            train_one_epoch(step, clock.counted(itertools.islice(batches, warmup + steps)),
                            self.prepared.source.rust_index, progress=clock)
        if hasattr(batches, "close"):
            batches.close()  # its DataLoader workers exit now, not while the loader alone is timed
        others = meter.others_cores()
        timing = clock.timing(warmup)
        data_rate = None
        if data_only is not None:
            data_rate = time_loop(lambda b: len(b[0]), data_only, steps, min(warmup, 1)).per_second
            data_only.close()
        row = PipelineResult(kind, timing.per_second, timing.items, timing.seconds, workers, channels_last,
                             data_rate, others_cores=others, compiled=compiled)
        if cuda:
            row.gpu_memory_mib = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return row

    def naive(self, steps: int = 20, warmup: int = 3) -> PipelineResult:
        self._ready()
        return self._measure("naive", self.naive_batches(), steps, warmup, data_only=self.naive_batches())

    def rustlab(self, steps: int = 20, warmup: int = 3, workers: int | None = None,
                channels_last: bool = False, compiled: bool = False) -> PipelineResult:
        workers = self.cfg.workers if workers is None else int(workers)
        return self._measure("rustlab", self.rustlab_batches(workers), steps, warmup, channels_last, workers,
                             data_only=self.rustlab_batches(workers), compiled=compiled)

    def bound(self, steps: int = 20, warmup: int = 3, channels_last: bool = False,
              compiled: bool = False) -> PipelineResult:
        return self._measure("bound", self.bound_batches(), steps, warmup, channels_last, compiled=compiled)
