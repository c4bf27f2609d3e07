"""Prediction and cold start, as a user meets them: the real ``rustlab.inference.predictor.Predictor`` on a
checkpoint the trainer's pieces build, and fresh `rustlab` processes."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
from pathlib import Path

from rustlab.bench.speed_data import PredictResult, StartupResult
from rustlab.bench.timing import CpuMeter, sync_for, time_loop
from rustlab.errors import RustlabError


def file_like(source):
    """A path or a file object for PIL from an Example's image (a path or a datasets cell)."""
    import io

    if isinstance(source, dict):
        return io.BytesIO(source["bytes"]) if source.get("bytes") else source["path"]
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source)
    return source


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


def speed_checkpoint(model: str, folder, model_config: dict | None = None) -> Path:
    """A checkpoint of ``model`` with untrained weights, built and saved by the trainer's pieces
    (``build_model``, ``input_preprocessing``, ``RunFolder.save_model``): for timing only, its
    answers mean nothing."""
    import dataclasses

    from rustlab.registry import count_parameters, get_model_spec, get_task
    from rustlab.training import RunFolder, build_model, input_preprocessing

    spec = get_model_spec(model)
    task = get_task(spec.task)
    class_names = ["no_rust", "rust"]
    base = spec.make_config(model_config)
    image_size = int(getattr(base, "image_size", 64))
    net, config = build_model(spec, task, class_names, image_size, model_config, seed=0)
    meta = {
        "model": spec.name, "plugin": spec.source, "task": task.name,
        "model_config": dataclasses.asdict(config), "class_names": class_names, "rust_index": 1,
        "preprocessing": input_preprocessing(config, image_size),
        "note": f"rustlab bench speed: untrained weights ({count_parameters(net):,} parameters), timing only",
    }
    name = f"{spec.name}-speed.safetensors"
    RunFolder(folder).save_model(name, net, meta, 0, None)
    return Path(folder) / name


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


def forward_ms(predictor, batch, n: int, warmup: int, sync=None) -> float:
    """Median ms of ``predictor.forward`` on one uint8 batch, ``n`` timed calls after ``warmup``."""
    return time_loop(lambda b: (predictor.forward(b), len(b))[1], itertools.repeat(batch), n, warmup, sync).median_ms


def measure_predictor(model: str, images: list[str], folder, model_config: dict | None = None, n: int = 20,
                      warmup: int = 3, batch_size: int = 16, device: str = "cpu",
                      channels_last: bool = False, batch_sizes=(), engine: str = "auto") -> PredictResult:
    """Warm latency of ``Predictor.predict`` from a PIL image and from a JPEG path, and
    ``predict_many`` throughput over ``images``. ``channels_last`` tries the Predictor with its
    model in NHWC layout, a candidate change to rustlab.inference.predictor. ``batch_sizes``: also the median
    time of ``Predictor.forward`` on a uint8 batch of each size (the GPU table's batch 1 and 64).
    ``engine``: the Predictor's (rustlab.inference.engine); channels_last is PyTorch's."""
    import torch

    from rustlab.data.images import open_rgb
    from rustlab.inference.predictor import Predictor
    from rustlab.registry import count_parameters

    predictor = Predictor(speed_checkpoint(model, folder, model_config), device=device, engine=engine)
    if channels_last:
        predictor.use_channels_last()
    cuda = predictor.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(predictor.device)
    sync = sync_for(predictor.device)

    def one(image):
        predictor.predict(image)
        return 1

    pil = open_rgb(images[0])  # decoded once, full size: the resize stays in the measured path
    meter = CpuMeter()
    pil_t = time_loop(one, itertools.repeat(pil), n, warmup, sync)
    path_t = time_loop(one, itertools.cycle(images), n, warmup, sync)
    folder_t = time_loop(lambda paths: sum(1 for _ in predictor.predict_many(paths, batch_size)),
                         iter([images]), 1, 0, sync)
    batch_ms = {}
    for size in batch_sizes:
        s = predictor.image_size
        batch = torch.randint(0, 256, (int(size), 3, s, s), dtype=torch.uint8)
        batch_ms[int(size)] = round(forward_ms(predictor, batch, n, warmup, sync), 3)
    result = PredictResult(model, predictor.image_size, count_parameters(predictor.model), pil_t.median_ms,
                           pil_t.p90_ms, path_t.median_ms, path_t.p90_ms, folder_t.items, folder_t.per_second,
                           batch_size, channels_last, engine=predictor.engine, others_cores=meter.others_cores(),
                           batch_ms=batch_ms)
    if cuda:
        result.gpu_memory_mib = round(torch.cuda.max_memory_allocated(predictor.device) / 2**20, 1)
    return result


def measure_fold(model: str, folder, model_config: dict | None = None, n: int = 20, warmup: int = 3,
                 rounds: int = 3, batch_size: int = 1) -> dict:
    """The Predictor's forward on a uint8 batch (normalise, model, float) with its BatchNorms
    folded (rustlab.inference.batchnorm_fold, what predict runs) and unfolded, alternating in ``rounds``
    rounds of ``n`` calls, so a host that speeds up or slows down meets both alike. Medians in ms
    (the best round of each), how many BatchNorms were folded, and how busy the other cores were."""
    import torch

    from rustlab.inference.predictor import Predictor

    predictor = Predictor(speed_checkpoint(model, folder, model_config), device="cpu", engine="torch")
    folded, plain = predictor.runner, predictor.model
    s = predictor.image_size
    batch = torch.randint(0, 256, (int(batch_size), 3, s, s), dtype=torch.uint8)
    best = {"folded": float("inf"), "plain": float("inf")}
    meter = CpuMeter()
    for _ in range(rounds):
        for name, runner in (("plain", plain), ("folded", folded)):
            predictor.runner = runner
            best[name] = min(best[name], forward_ms(predictor, batch, n, warmup))
    predictor.runner = folded
    return {"model": model, "image_size": s, "batch": int(batch_size), "plain_ms": round(best["plain"], 2),
            "folded_ms": round(best["folded"], 2), "speedup": round(best["plain"] / best["folded"], 3),
            "folded_batchnorms": int(getattr(folded, "folded_batchnorms", 0)), "others_cores": meter.others_cores()}


# --- cold start ---------------------------------------------------------------------------------------


def rustlab_command() -> list[str]:
    """The console script next to this interpreter (what a user types), else ``python -m rustlab``."""
    script = Path(sys.executable).parent / "rustlab"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rustlab"]


def _run(argv) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
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
    """Cold start in fresh processes (they are this one's children: the meter leaves them out)."""
    python = sys.executable
    meter = CpuMeter()
    import_ms = statistics.median(float(_run([python, "-c", _IMPORT_PROBE])) for _ in range(repeats))
    probe = subprocess.run([python, "-c", _HELP_PROBE], capture_output=True, text=True, timeout=120, check=False)
    help_imports_torch = probe.stderr.strip().splitlines()[-1:] != ["False"]
    result = StartupResult(process_seconds([python, "-c", "pass"], repeats), None, import_ms,
                           process_seconds(rustlab_command() + ["--help"], repeats), help_imports_torch)
    if checkpoint is not None and image is not None:
        result.import_torch_s = process_seconds([python, "-c", "import torch"], max(1, repeats // 2))
        result.predict_s = process_seconds(
            rustlab_command() + ["predict", "--checkpoint", str(checkpoint), str(image), "--device", "cpu"],
            max(1, repeats // 2))
    result.others_cores = meter.others_cores()
    return result
