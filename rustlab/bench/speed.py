"""`rustlab bench speed`: how fast rustlab trains and predicts, measured side by side on this machine.

A thin driver: training throughput comes from ``speed_train`` (the trainer's own loader, model,
step and epoch loop against the seed's naive pipeline and a compute-only bound), prediction and
cold start from ``speed_predict`` (the real Predictor, fresh processes), timing and the
other-processes meter from ``timing``. ``speed_report`` turns the SpeedReport into tables and
``speed_results`` writes it where a contended figure cannot replace a quiet one.
"""

from __future__ import annotations

import itertools
import tempfile
import time

from rustlab.bench.speed_data import SpeedReport, add_ratios, fastest_run
from rustlab.bench.speed_predict import (
    measure_predictor,
    measure_startup,
    sample_jpegs,
    speed_checkpoint,
)
from rustlab.bench.speed_train import TrainingBench, default_data
from rustlab.bench.timing import load_average, machine_info
from rustlab.errors import RustlabError

PARTS = ("train", "predict", "startup")
PREDICT_MODELS = ("cnn", "unet")
GPU_PREDICT_BATCHES = (1, 64)  # issue 16: predict ms at batch 1 and batch 64 on a GPU

__all__ = ["PARTS", "PREDICT_MODELS", "default_data", "run_speed", "training_plan"]


def training_plan(workers=(0, 1), channels_last=(False, True), compile_modes=(False,)) -> list[tuple[str, dict]]:
    """The training rows in the order they run: naive, then per (compile, layout) the rustlab
    rows (one per worker count) and the bound in that layout."""
    plan = [("naive", {})]
    for compiled, cl in itertools.product(compile_modes, channels_last):
        extra = {"compiled": True} if compiled else {}
        plan += [("rustlab", {"workers": w, "channels_last": cl, **extra}) for w in workers]
        plan.append(("bound", {"channels_last": cl, **extra}))
    return plan


def run_speed(data: str | None = None, model: str = "cnn", batch_size: int | None = None,
              image_size: int | None = None, steps: int = 30, warmup: int = 3, workers=(0, 1),
              channels_last=(False, True), parts=PARTS, device: str = "cpu", threads: int | None = None,
              model_configs: dict | None = None, predict_models=PREDICT_MODELS, predict_n: int = 20,
              startup_repeats: int = 5, cold_predict: bool = True, repeats: int = 1, amp: bool | None = None,
              compile_modes=(False,), pin_memory: bool | None = None, folder_n: int = 200,
              log=None) -> SpeedReport:
    """Every measurement of issue 7 in one run, in one process, on one machine.

    Training pipelines run ``repeats`` times in turn (naive, rustlab..., bound, naive, ...) and
    each row reports its fastest repeat: other work on a shared machine only ever slows a repeat
    down, so the fastest is the closest to what the pipeline costs (as ``timeit`` takes the
    minimum). Every repeat's rate is kept in ``runs``, and every row its ``others_cores``.
    ``folder_n``: photos of ``data`` for folder prediction against the 2-core bound (0: not measured),
    beside 24 camera-sized JPEGs."""
    import torch

    log = log or (lambda message: None)
    if threads:
        torch.set_num_threads(int(threads))
    model_configs = model_configs or {}
    data = data or default_data()
    start = time.perf_counter()
    report = SpeedReport(machine_info(device))
    cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    with tempfile.TemporaryDirectory(prefix="rustlab-bench-") as tmp:
        if "train" in parts:
            bench = TrainingBench(data, model, image_size, batch_size, model_configs.get(model), device,
                                  amp=amp, pin_memory=pin_memory)
            report.cache = bench.build_cache()
            report.settings = {**bench.settings, "steps": steps, "warmup": warmup, "repeats": repeats}
            log(f"data {data}: {len(bench.examples)} training images at {bench.image_size}px, "
                f"batch {bench.batch_size}, {steps} timed batches per pipeline")
            log(f"cache: decoded in {report.cache.decode_seconds:.1f}s, reloaded in {report.cache.load_seconds:.2f}s")
            report.decode = bench.decode_stats()
            plan = training_plan(workers, channels_last, compile_modes)
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
            # the default path (onnxruntime on CPU), then PyTorch in each layout asked for
            variants = [("auto", False)] + [("torch", cl) for cl in channels_last]
            for name, (engine, cl) in itertools.product(predict_models, variants):
                try:
                    result = measure_predictor(name, images, tmp, model_configs.get(name), n=predict_n,
                                               warmup=min(warmup, 3), device=device, channels_last=cl,
                                               batch_sizes=GPU_PREDICT_BATCHES if cuda else (), engine=engine)
                except RustlabError as exc:  # e.g. the unet plugin is not installed here
                    if engine == "auto":
                        report.skipped.append(f"predict {name}: {exc}")
                        log(f"skipped predict {name}: {exc}")
                    continue
                result.default_path = engine == "auto"
                report.predict.append(result)
                log(f"predict {name} ({result.engine}{', channels_last' if cl else ''}): {result.path_ms:.1f} ms "
                    f"from a JPEG path, {result.folder_images_per_s:.1f} images/s on a folder")
            if not cuda and folder_n:
                report.folder = folder_bounds(data, tmp, predict_models, model_configs, folder_n, log)
        if "startup" in parts:
            checkpoint = image = None
            if cold_predict:
                checkpoint = speed_checkpoint("cnn", tmp, model_configs.get("cnn"))
                image = sample_jpegs(data, tmp, count=1)[0]
            else:
                report.skipped.append("startup predict: not measured (cold_predict off)")
            report.startup = measure_startup(checkpoint, image, repeats=startup_repeats)
            log(f"startup: rustlab --help {report.startup.help_s:.2f}s")
    report.machine["load_average_after"] = load_average()
    report.seconds = time.perf_counter() - start
    return report


def folder_bounds(data: str, tmp, models, model_configs: dict, count: int, log) -> list:
    """The default predict path of each model on a folder, against the bound (rustlab.bench.speed_bound):
    on ``count`` of the data's JPEGs and on 12 MP camera JPEGs."""
    from pathlib import Path

    from rustlab.bench.speed_bound import camera_folder, measure_folder_bound
    from rustlab.inference.predictor import Predictor

    own = sample_jpegs(data, Path(tmp) / "folder", count=count)
    label = f"{Path(data).name} JPEGs" if Path(data).is_dir() else "synthetic 512 px JPEGs"
    rows = []
    for name in models:
        try:
            predictor = Predictor(speed_checkpoint(name, tmp, model_configs.get(name)), device="cpu")
        except RustlabError as exc:
            log(f"skipped folder bound {name}: {exc}")
            continue
        for photos, paths in ((label, own), ("12 MP camera JPEGs", camera_folder(tmp))):
            row = measure_folder_bound(predictor, name, paths, photos)
            rows.append(row)
            log(f"folder {name} ({row.engine}) on {photos}: {row.pipeline_per_s:.1f} img/s, "
                f"bound {row.bound_per_s:.1f} ({row.of_bound:.2f} of it)")
    return rows
