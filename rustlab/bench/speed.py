"""How fast rustlab trains and predicts, measured side by side on this machine.

Training throughput (images/s) of one model, one batch size, one training split, three ways:

- naive: the seed's pipeline: a Dataset that opens and resizes each JPEG with PIL on every
  access (torchvision Resize + ToTensor + Normalize), a default DataLoader;
- rustlab: the trainer's pipeline: decode-once cache, uint8 tensor augmentation, the DataLoader
  settings of TrainConfig; variants (workers, channels_last) show what each setting buys;
- bound: the same model on random tensors already in memory: compute only.

The training step (the trainer's AdamW + one-cycle from ``make_optimizer``, the task's loss) is
the same for all three, so the ratios isolate the data pipeline. Then Predictor latency and
folder throughput, and process cold start (``rustlab --help``, ``rustlab predict``).

`rustlab bench speed` and benchmarks/test_speed.py call these same functions: there is one
timing loop, ``time_loop``. rustlab.bench.speed_report turns a SpeedReport into tables.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rustlab.errors import RustlabError

PARTS = ("train", "predict", "startup")
PREDICT_MODELS = ("cnn", "unet")


def default_data() -> str:
    """../shared/data/corrosion-cls beside the project (seen from the cwd or this checkout), else builtin."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root.parent / "shared" / "data" / "corrosion-cls"
        if candidate.is_dir():
            return str(candidate)
    return "builtin"


# --- the one timing loop ------------------------------------------------------------------------------


@dataclass
class Timing:
    items: int
    seconds: float
    durations: list = field(default_factory=list, repr=False)  # seconds per step

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(self.durations)

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.durations)
        return 1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def time_loop(step, source, steps: int, warmup: int = 0, sync=None) -> Timing:
    """Run ``step(next(source))`` ``warmup`` times untimed, then ``steps`` times timed.

    Fetching the next item is inside the timed region: that is where a data pipeline's cost
    shows. ``step`` returns how many images it handled; ``sync`` waits for queued GPU work.
    """
    for _ in range(warmup):
        step(next(source))
    if sync is not None:
        sync()
    items, durations = 0, []
    start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        items += step(next(source))
        if sync is not None:
            sync()
        durations.append(time.perf_counter() - t0)
    return Timing(items, time.perf_counter() - start, durations)


class CpuMeter:
    """How many cores other processes kept busy since it was made (Linux; None elsewhere).

    The machine's busy CPU time (/proc/stat) less this process's and its reaped children's (the
    DataLoader workers), over the wall time: on a shared machine, the number that tells a clean
    measurement from one another job slowed down."""

    def __init__(self):
        self.start = _cpu_snapshot()

    def others_cores(self) -> float | None:
        end = _cpu_snapshot()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        busy, own, wall = (b - a for a, b in zip(self.start, end))
        return round(max(0.0, (busy - own) / wall), 2)


def _cpu_snapshot():
    try:
        import resource

        with open("/proc/stat") as fh:
            user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fh.readline().split()[1:8])
        busy = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    except (ImportError, OSError, ValueError):
        return None
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return busy, own, time.perf_counter()


def _sync_for(device):
    if device.type != "cuda":
        return None
    import torch

    return lambda: torch.cuda.synchronize(device)


def _epochs(loader, epoch_aware=()):
    """Batches forever, epoch after epoch (the trainer pays each epoch's restart too: workers
    are forked again, ``set_epoch`` is called on its sampler and dataset)."""
    for epoch in itertools.count():
        for item in epoch_aware:
            item.set_epoch(epoch)
        yield from loader


def machine_info(device: str = "cpu") -> dict:
    import PIL
    import torch
    import torchvision

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": device,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


# --- training throughput --------------------------------------------------------------------------------


@dataclass
class PipelineResult:
    kind: str  # naive | rustlab | bound
    images_per_s: float
    images: int
    seconds: float
    workers: int = 0
    channels_last: bool = False
    data_images_per_s: float | None = None  # the loader alone, no model: the pipeline's own ceiling
    runs: list = field(default_factory=list)  # images/s of every repeat; the row is the fastest one
    others_cores: float | None = None  # cores other processes kept busy meanwhile (0 on a quiet machine)
    vs_naive: float | None = None
    vs_bound: float | None = None  # against the bound in the same memory format

    @property
    def name(self) -> str:
        parts = [self.kind]
        if self.channels_last:
            parts.append("channels_last")
        if self.kind == "rustlab":
            parts.append(f"workers={self.workers}")
        return " ".join(parts)


@dataclass
class CacheStats:
    images: int
    image_size: int
    decode_seconds: float  # the first run: decode every file, write the cache
    load_seconds: float  # every later run with the same files and preprocessing: read it back
    reused: bool  # the second run found the first run's cache (same key)
    memory_bytes: int
    disk_bytes: int


@dataclass
class DecodeStats:
    images: int
    image_size: int
    full_ms: float  # PIL decodes the whole JPEG, then resizes (the seed)
    draft_ms: float  # rustlab.data.images.load_square: JPEG draft mode decodes at a reduced scale
    camera_full_ms: float | None = None  # the same two on one 12-megapixel (4000x3000) JPEG
    camera_draft_ms: float | None = None


def camera_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """A synthetic steel photo the size a phone camera takes (12 MP), as JPEG bytes."""
    import io

    import numpy as np
    from PIL import Image

    from rustlab.data.synthetic import render_sample

    image, _ = render_sample(np.random.default_rng(12), 512, True)
    buf = io.BytesIO()
    Image.fromarray(image).resize((width, height), Image.BILINEAR).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class NaiveDataset:
    """The seed's pipeline: open, decode and resize every image with PIL on every access."""

    def __init__(self, examples, size: int):
        from torchvision import transforms

        from rustlab.data.transforms import MEAN, STD

        self.items = [(ex.image, int(ex.label)) for ex in examples]
        self.transform = transforms.Compose([
            transforms.Resize((size, size)), transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        source, label = self.items[i]
        return self.transform(Image.open(_file_like(source)).convert("RGB")), label


def _file_like(source):
    """A path or a file object for PIL from an Example's image (a path or a datasets cell)."""
    import io

    if isinstance(source, dict):
        return io.BytesIO(source["bytes"]) if source.get("bytes") else source["path"]
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source)
    return source


@contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


class TrainingBench:
    """One model, batch size and training split, shared by every pipeline it measures."""

    def __init__(self, data: str | None = None, model: str = "cnn", image_size: int | None = None,
                 batch_size: int | None = None, model_config: dict | None = None, device: str = "cpu",
                 augment: str | None = None, seed: int = 0):
        from rustlab.config import TrainConfig
        from rustlab.data.sources import load_source
        from rustlab.data.splits import assign_splits
        from rustlab.device import resolve_device
        from rustlab.registry import get_model_spec, get_task

        self.defaults = TrainConfig()
        self.data = data or default_data()
        self.spec = get_model_spec(model)
        self.task = get_task(self.spec.task)
        if self.task.target != "label":
            raise RustlabError(f"bench speed: training throughput is measured on classification models; "
                               f"{model!r} is a {self.spec.task} model")
        self.device = resolve_device(device)
        self.batch_size = int(batch_size or self.defaults.batch_size)
        self.augment = augment or self.defaults.augment
        self.seed = seed
        self.model_config = dict(model_config or {})
        base = self.spec.make_config(self.model_config)
        self.image_size = int(image_size or getattr(base, "image_size", 64))
        source = load_source(self.data, task=self.task.name)
        self.class_names = source.class_names
        self.examples = [ex for ex in assign_splits(source, seed=seed)["train"] if ex.label is not None]
        if len(self.examples) < 2:
            raise RustlabError(f"--data {self.data}: too few labelled training images to measure")
        self.decoded = None

    @property
    def settings(self) -> dict:
        return {"data": self.data, "model": self.spec.name, "model_config": self.model_config,
                "image_size": self.image_size, "batch_size": self.batch_size, "augment": self.augment,
                "train_images": len(self.examples), "device": str(self.device)}

    # -- data -------------------------------------------------------------------------------------------

    def build_cache(self) -> CacheStats:
        """Build the decode-once cache in a scratch folder (a cold first run), then load it again."""
        from rustlab.data.cache import load_decoded

        with tempfile.TemporaryDirectory(prefix="rustlab-bench-cache-") as tmp, _env("RUSTLAB_CACHE", tmp):
            first = load_decoded(self.examples, self.image_size)
            second = load_decoded(self.examples, self.image_size)
            disk = sum(f.stat().st_size for f in Path(tmp).rglob("*.safetensors"))
        self.decoded = second
        kept = set(second.keys)  # naive and rustlab read the same readable images
        self.examples = [ex for ex in self.examples if ex.key in kept]
        return CacheStats(len(second), self.image_size, first.seconds, second.seconds, second.from_cache,
                          second.nbytes, disk)

    def decode_stats(self, n: int = 64, camera_repeats: int = 5) -> DecodeStats:
        """Per-image decode + resize: PIL's full decode (the seed) against JPEG draft mode (rustlab)."""
        from PIL import Image

        from rustlab.data.images import load_square

        size = self.image_size

        def full(source):
            Image.open(_file_like(source)).convert("RGB").resize((size, size), Image.BILINEAR)
            return 1

        def draft(source):
            load_square(source, size)
            return 1

        sample = [ex.image for ex in self.examples[:n]]
        full_t = time_loop(full, iter(sample), len(sample), 0)
        draft_t = time_loop(draft, iter(sample), len(sample), 0)
        stats = DecodeStats(len(sample), size, full_t.median_ms, draft_t.median_ms)
        if camera_repeats:  # corrosion-cls was shrunk to <= 512 px; a user's camera photo is far larger
            photo = itertools.repeat(camera_jpeg())
            stats.camera_full_ms = time_loop(full, photo, camera_repeats, 1).median_ms
            stats.camera_draft_ms = time_loop(draft, photo, camera_repeats, 1).median_ms
        return stats

    def naive_loader(self):
        import torch

        return torch.utils.data.DataLoader(NaiveDataset(self.examples, self.image_size),
                                           batch_size=self.batch_size, shuffle=True)

    def rustlab_batches(self, workers: int):
        """Training batches as rustlab.train builds them (one process), epoch after epoch.

        Mirrors the trainer's DataLoader: per-item keyed augmentation, its sampler, workers forked
        again each epoch. (A trainer function that returns this loader would let the benchmark call
        it instead of mirroring it.)"""
        import torch

        from rustlab.data.transforms import DecodedDataset, build_augmentation
        from rustlab.distributed import Dist, KeyedAugmentation

        if self.decoded is None:
            self.build_cache()
        train_set = KeyedAugmentation(DecodedDataset(self.decoded, target=self.task.target,
                                                     transform=build_augmentation(self.augment, self.image_size)),
                                      self.seed)
        sampler = Dist().sampler(train_set, seed=self.seed)
        loader = torch.utils.data.DataLoader(
            train_set, batch_size=self.batch_size, sampler=sampler, drop_last=len(train_set) > self.batch_size,
            num_workers=workers, pin_memory=self.device.type == "cuda")
        return _epochs(loader, (sampler, train_set))

    def bound_batches(self, channels_last: bool, count: int = 4):
        """A few random batches already in memory (normalised floats), reused in turn."""
        import torch

        g = torch.Generator().manual_seed(self.seed)
        s, n = self.image_size, self.batch_size
        batches = []
        for _ in range(count):
            x = torch.randn((n, 3, s, s), generator=g).to(self.device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            batches.append((x, torch.randint(0, len(self.class_names), (n,), generator=g).to(self.device)))
        return itertools.cycle(batches)

    # -- the shared training step -------------------------------------------------------------------------

    def new_model(self, channels_last: bool = False):
        import torch

        from rustlab.device import seed_everything

        overrides = dict(self.task.model_overrides(self.class_names))
        if hasattr(self.spec.default_config(), "image_size"):
            overrides["image_size"] = self.image_size
        config = self.spec.make_config(self.model_config, **overrides)
        seed_everything(self.seed)  # every pipeline trains the same initial weights
        model = self.spec.build(config).to(self.device).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def train_step(self, model, total_steps: int, prepare):
        """One optimisation step as rustlab.train.train_one_epoch does it; returns the batch size."""
        import torch

        from rustlab.config import TrainConfig
        from rustlab.device import autocast_context
        from rustlab.train import make_optimizer

        cfg = TrainConfig(epochs=1, batch_size=self.batch_size)
        optimizer, scheduler = make_optimizer(model, cfg, total_steps)
        device, task = self.device, self.task

        def step(batch):
            images, targets = batch[0], batch[1]
            with autocast_context(device, cfg.amp):
                outputs = model(prepare(images.to(device, non_blocking=True)))
            loss = task.loss(outputs, targets.to(device, non_blocking=True))
            if not torch.isfinite(loss):
                raise RustlabError("bench speed: training diverged (loss is not finite)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            return len(images)

        return step

    def _measure(self, kind, batches, prepare, steps, warmup, channels_last=False, workers=0,
                 data_only=None) -> PipelineResult:
        """Train on ``batches``; then, given ``data_only`` (fresh batches of the same pipeline),
        time the pipeline alone: how fast it could feed a model that cost nothing."""
        model = self.new_model(channels_last)
        step = self.train_step(model, steps + warmup + 1, prepare)
        meter = CpuMeter()
        timing = time_loop(step, batches, steps, warmup, sync=_sync_for(self.device))
        if hasattr(batches, "close"):
            batches.close()  # its DataLoader workers exit now, not while the loader alone is timed
        others = meter.others_cores()
        data_rate = None
        if data_only is not None:
            data_rate = time_loop(lambda b: len(b[0]), data_only, steps, min(warmup, 1)).per_second
            data_only.close()
        return PipelineResult(kind, timing.per_second, timing.items, timing.seconds, workers, channels_last,
                              data_rate, others_cores=others)

    def naive(self, steps: int = 20, warmup: int = 3) -> PipelineResult:
        return self._measure("naive", _epochs(self.naive_loader()), lambda x: x, steps, warmup,
                             data_only=_epochs(self.naive_loader()))

    def rustlab(self, steps: int = 20, warmup: int = 3, workers: int | None = None,
                channels_last: bool = False) -> PipelineResult:
        import torch

        from rustlab.data.transforms import normalize

        workers = self.defaults.workers if workers is None else int(workers)
        if channels_last:
            # uint8 batch to NHWC first: normalize keeps the layout, the conv gets NHWC without a copy
            def prepare(x):
                return normalize(x.contiguous(memory_format=torch.channels_last))
        else:
            prepare = normalize
        return self._measure("rustlab", self.rustlab_batches(workers), prepare, steps, warmup,
                             channels_last, workers, data_only=self.rustlab_batches(workers))

    def bound(self, steps: int = 20, warmup: int = 3, channels_last: bool = False) -> PipelineResult:
        return self._measure("bound", self.bound_batches(channels_last), lambda x: x, steps, warmup, channels_last)


def fastest_run(runs: list[PipelineResult]) -> PipelineResult:
    """The repeat with the most images/s, keeping every repeat's rate in ``runs``."""
    row = dataclasses.replace(max(runs, key=lambda r: r.images_per_s))
    row.runs = [round(r.images_per_s, 1) for r in runs]
    return row


def add_ratios(rows: list[PipelineResult]) -> list[PipelineResult]:
    """Fill vs_naive and vs_bound (the bound in the same memory format) on every row."""
    naive = next((r for r in rows if r.kind == "naive"), None)
    bounds = {r.channels_last: r for r in rows if r.kind == "bound"}
    for r in rows:
        if naive is not None and r is not naive:
            r.vs_naive = r.images_per_s / naive.images_per_s
        bound = bounds.get(r.channels_last)
        if bound is not None and r is not bound:
            r.vs_bound = r.images_per_s / bound.images_per_s
    return rows


# --- prediction -----------------------------------------------------------------------------------------


@dataclass
class PredictResult:
    model: str
    image_size: int
    parameters: int
    pil_ms: float  # median warm latency from a decoded PIL image (what the GUI holds)
    pil_p90_ms: float
    path_ms: float  # median warm latency from a JPEG path (decode included)
    path_p90_ms: float
    folder_images: int
    folder_images_per_s: float
    batch_size: int
    channels_last: bool = False  # the Predictor's model moved to NHWC (not what rustlab predict does today)
    others_cores: float | None = None  # cores other processes kept busy meanwhile


def speed_checkpoint(model: str, folder, model_config: dict | None = None) -> Path:
    """A checkpoint of ``model`` with untrained weights: for timing only, its answers mean nothing."""
    from rustlab.checkpoint import save_checkpoint
    from rustlab.data.transforms import MEAN, STD
    from rustlab.device import seed_everything
    from rustlab.registry import count_parameters, get_model_spec, get_task

    spec = get_model_spec(model)
    task = get_task(spec.task)
    class_names = ["no_rust", "rust"]
    config = spec.make_config(model_config, **task.model_overrides(class_names))
    seed_everything(0)
    net = spec.build(config)
    meta = {
        "model": spec.name, "plugin": spec.source, "task": task.name,
        "model_config": dataclasses.asdict(config), "class_names": class_names, "rust_index": 1,
        "preprocessing": {"image_size": int(getattr(config, "image_size", 64)), "mean": list(MEAN), "std": list(STD),
                          "resize": "square-bilinear", "decoder": "rustlab.data.images.load_square"},
        "note": f"rustlab bench speed: untrained weights ({count_parameters(net):,} parameters), timing only",
    }
    path = Path(folder) / f"{spec.name}-speed.safetensors"
    save_checkpoint(path, {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    return path


def sample_jpegs(data: str, folder, count: int = 32, size: int = 512) -> list[str]:
    """JPEG files to predict on: the data's own files where it has them, else synthetic photos
    (``size`` px) written to ``folder``."""
    paths = []
    if data != "builtin" and not data.startswith("builtin:") and Path(data).is_dir():
        paths = sorted(str(p) for p in Path(data).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
        paths = paths[:: max(1, len(paths) // count)][:count]  # spread over the classes' folders
    if paths:
        return paths
    import numpy as np
    from PIL import Image

    from rustlab.data.synthetic import render_sample

    out = Path(folder) / "jpegs"
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, _ = render_sample(np.random.default_rng([7, i]), size, bool(i % 2))
        path = out / f"sample_{i:03d}.jpg"
        Image.fromarray(image).save(path, quality=90)
        paths.append(str(path))
    return paths


def measure_predictor(model: str, images: list[str], folder, model_config: dict | None = None, n: int = 20,
                      warmup: int = 3, batch_size: int = 16, device: str = "cpu",
                      channels_last: bool = False) -> PredictResult:
    """Warm latency of ``Predictor.predict`` from a PIL image and from a JPEG path, and
    ``predict_many`` throughput over ``images``. ``channels_last`` tries the Predictor with its
    model in NHWC layout, a candidate change to rustlab.predict."""
    import torch

    from rustlab.data.images import open_rgb
    from rustlab.predict import Predictor
    from rustlab.registry import count_parameters

    predictor = Predictor(speed_checkpoint(model, folder, model_config), device=device)
    if channels_last:
        predictor.model = predictor.model.to(memory_format=torch.channels_last)
    sync = _sync_for(predictor.device)

    def one(image):
        predictor.predict(image)
        return 1

    pil = open_rgb(images[0])  # decoded once, full size: the resize stays in the measured path
    meter = CpuMeter()
    pil_t = time_loop(one, itertools.repeat(pil), n, warmup, sync)
    path_t = time_loop(one, itertools.cycle(images), n, warmup, sync)
    folder_t = time_loop(lambda paths: sum(1 for _ in predictor.predict_many(paths, batch_size)),
                         iter([images]), 1, 0, sync)
    return PredictResult(model, predictor.image_size, count_parameters(predictor.model), pil_t.median_ms,
                         pil_t.p90_ms, path_t.median_ms, path_t.p90_ms, folder_t.items, folder_t.per_second,
                         batch_size, channels_last, meter.others_cores())


# --- cold start -------------------------------------------------------------------------------------------


@dataclass
class StartupResult:
    python_s: float  # a bare `python -c pass`, for reference
    import_torch_s: float | None  # wall time of `python -c "import torch"`: the floor of any command that predicts
    import_rustlab_ms: float  # in-process time of `import rustlab`
    help_s: float  # wall time of `rustlab --help`, process start included
    help_imports_torch: bool
    predict_s: float | None = None  # wall time of `rustlab predict --checkpoint C one.jpg`


def rustlab_command() -> list[str]:
    """The console script next to this interpreter (what a user types), else ``python -m rustlab``."""
    script = Path(sys.executable).parent / "rustlab"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rustlab"]


def _run(argv) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RustlabError(f"bench speed: {' '.join(map(str, argv[:3]))} ... exited {result.returncode}: {last}")
    return result.stdout


def process_seconds(argv, repeats: int = 5) -> float:
    """Median wall time of running ``argv`` as a fresh process."""
    return time_loop(lambda _: (_run(argv), 1)[1], itertools.repeat(None), repeats, 1).median_ms / 1000


_IMPORT_PROBE = ("import time; t = time.perf_counter(); import rustlab; "
                 "print((time.perf_counter() - t) * 1000)")
_HELP_PROBE = ("import sys\nfrom rustlab.cli import main\nsys.argv = ['rustlab', '--help']\n"
               "try:\n    main()\nexcept SystemExit:\n    pass\n"
               "print('torch' in sys.modules, file=sys.stderr)")


def measure_startup(checkpoint=None, image=None, repeats: int = 5) -> StartupResult:
    python = sys.executable
    import_ms = statistics.median(float(_run([python, "-c", _IMPORT_PROBE])) for _ in range(repeats))
    probe = subprocess.run([python, "-c", _HELP_PROBE], capture_output=True, text=True, timeout=120)
    help_imports_torch = probe.stderr.strip().splitlines()[-1:] != ["False"]
    result = StartupResult(process_seconds([python, "-c", "pass"], repeats), None, import_ms,
                           process_seconds(rustlab_command() + ["--help"], repeats), help_imports_torch)
    if checkpoint is not None and image is not None:
        result.import_torch_s = process_seconds([python, "-c", "import torch"], max(1, repeats // 2))
        result.predict_s = process_seconds(
            rustlab_command() + ["predict", "--checkpoint", str(checkpoint), str(image), "--device", "cpu"],
            max(1, repeats // 2))
    return result


# --- the whole report -------------------------------------------------------------------------------------


@dataclass
class SpeedReport:
    machine: dict
    settings: dict = field(default_factory=dict)
    cache: CacheStats | None = None
    decode: DecodeStats | None = None
    training: list = field(default_factory=list)  # PipelineResult
    predict: list = field(default_factory=list)  # PredictResult
    startup: StartupResult | None = None
    skipped: list = field(default_factory=list)  # one line per measurement left out, with why
    command: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        from rustlab.bench.speed_report import check_targets

        d["training"] = [{**dataclasses.asdict(r), "name": r.name} for r in self.training]
        d["targets"] = check_targets(self)
        return d


def run_speed(data: str | None = None, model: str = "cnn", batch_size: int | None = None,
              image_size: int | None = None, steps: int = 30, warmup: int = 3, workers=(0, 1),
              channels_last=(False, True), parts=PARTS, device: str = "cpu", threads: int | None = None,
              model_configs: dict | None = None, predict_models=PREDICT_MODELS, predict_n: int = 20,
              startup_repeats: int = 5, cold_predict: bool = True, repeats: int = 1, log=None) -> SpeedReport:
    """Every measurement of issue 7 in one run, in one process, on one machine.

    Training pipelines run ``repeats`` times in turn (naive, rustlab..., bound, naive, ...) and
    each row reports its fastest repeat: other work on a shared machine only ever slows a repeat
    down, so the fastest is the closest to what the pipeline costs (as ``timeit`` takes the
    minimum). Every repeat's rate is kept in ``runs``."""
    import torch

    log = log or (lambda message: None)
    if threads:
        torch.set_num_threads(int(threads))
    model_configs = model_configs or {}
    data = data or default_data()
    start = time.perf_counter()
    report = SpeedReport(machine_info(device))
    with tempfile.TemporaryDirectory(prefix="rustlab-bench-") as tmp:
        if "train" in parts:
            bench = TrainingBench(data, model, image_size, batch_size, model_configs.get(model), device)
            report.settings = {**bench.settings, "steps": steps, "warmup": warmup, "repeats": repeats}
            log(f"data {data}: {len(bench.examples)} training images at {bench.image_size}px, "
                f"batch {bench.batch_size}, {steps} timed batches per pipeline")
            report.cache = bench.build_cache()
            log(f"cache: decoded in {report.cache.decode_seconds:.1f}s, reloaded in {report.cache.load_seconds:.2f}s")
            report.decode = bench.decode_stats()
            plan = [("naive", {})]
            for cl in channels_last:
                plan += [("rustlab", {"workers": w, "channels_last": cl}) for w in workers]
                plan.append(("bound", {"channels_last": cl}))
            runs = [[] for _ in plan]
            for repeat in range(max(1, repeats)):
                for (kind, kw), row_runs in zip(plan, runs):
                    row = getattr(bench, kind)(steps, warmup, **kw)
                    row_runs.append(row)
                    log(f"{row.name:<36} {row.images_per_s:8.1f} images/s"
                        + (f"  (repeat {repeat + 1})" if repeats > 1 else "")
                        + (f"  others kept {row.others_cores:.2f} cores busy" if row.others_cores else ""))
            report.training = add_ratios([fastest_run(r) for r in runs])
        if "predict" in parts:
            images = sample_jpegs(data, tmp, count=max(4, predict_n))
            for name, cl in itertools.product(predict_models, channels_last):
                try:
                    result = measure_predictor(name, images, tmp, model_configs.get(name), n=predict_n,
                                               warmup=min(warmup, 3), device=device, channels_last=cl)
                except RustlabError as exc:  # e.g. the unet plugin is not installed here
                    if not cl:
                        report.skipped.append(f"predict {name}: {exc}")
                        log(f"skipped predict {name}: {exc}")
                    continue
                report.predict.append(result)
                log(f"predict {name}{' channels_last' if cl else ''}: {result.path_ms:.1f} ms from a JPEG path, "
                    f"{result.folder_images_per_s:.1f} images/s on a folder")
        if "startup" in parts:
            checkpoint = image = None
            if cold_predict:
                checkpoint = speed_checkpoint("cnn", tmp, model_configs.get("cnn"))
                image = sample_jpegs(data, tmp, count=1)[0]
            else:
                report.skipped.append("startup predict: not measured (cold_predict off)")
            report.startup = measure_startup(checkpoint, image, repeats=startup_repeats)
            log(f"startup: rustlab --help {report.startup.help_s:.2f}s")
    report.machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    report.seconds = time.perf_counter() - start
    return report
