"""Folder prediction against the 2-core bound (issue 33): how close `rustlab predict FOLDER`
comes to the most any pipeline could do on these cores.

Per photo, decoding costs ``1 / decode_per_s`` of one core (measured on one thread) and the model
``cores / model_per_s`` (its rate alone on all its threads, photos decoded beforehand: the core
time it takes, however well it spreads). Spread over every core, the bound is
``cores / (cores / model_per_s + 1 / decode_per_s)`` photos a second. The three are measured in
alternating rounds in one process, so a host that speeds up or slows down meets each alike; each
keeps its fastest round.
"""

from __future__ import annotations

import os
import time

from rustlab.bench.speed_data import FolderBoundResult
from rustlab.bench.timing import CpuMeter


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def camera_folder(folder, count: int = 24) -> list[str]:
    """``count`` 12 MP camera-sized JPEGs written to ``folder`` (synthetic steel; the decoder's
    cost depends on the size, not on what the photo shows)."""
    from pathlib import Path

    from rustlab.bench.speed_predict import camera_jpeg

    out = Path(folder) / "camera"
    out.mkdir(parents=True, exist_ok=True)
    data = camera_jpeg()
    paths = []
    for i in range(count):
        path = out / f"camera_{i:03d}.jpg"
        if not path.exists():
            path.write_bytes(data)
        paths.append(str(path))
    return paths


def measure_folder_bound(predictor, model: str, images: list[str], photos: str, batch_size: int = 16,
                         rounds: int = 2) -> FolderBoundResult:
    """Decode alone (one thread), the model alone (all its threads) and the pipeline
    (``predict_many``) over ``images``, ``rounds`` times in turn."""
    decoded = [predictor.preprocess(path)[0] for path in images[:batch_size]]  # warm-up, and the model's input
    predictor.run_batch(decoded)
    best = {"decode": 0.0, "model": 0.0, "pipeline": 0.0}
    runs = []
    meter = CpuMeter()
    for _ in range(max(1, rounds)):
        start = time.perf_counter()
        decoded = [predictor.preprocess(path)[0] for path in images]
        best["decode"] = max(best["decode"], len(images) / (time.perf_counter() - start))
        start = time.perf_counter()
        for i in range(0, len(decoded), batch_size):
            predictor.run_batch(decoded[i:i + batch_size])
        best["model"] = max(best["model"], len(images) / (time.perf_counter() - start))
        del decoded
        start = time.perf_counter()
        done = sum(1 for _ in predictor.predict_many(images, batch_size=batch_size))
        runs.append(round(done / (time.perf_counter() - start), 1))
        best["pipeline"] = max(best["pipeline"], runs[-1])
    cores = usable_cores()
    bound = cores / (cores / best["model"] + 1 / best["decode"])
    return FolderBoundResult(model, predictor.engine, photos, len(images), batch_size, cores,
                             round(best["decode"], 1), round(best["model"], 1), round(bound, 1),
                             best["pipeline"], runs, meter.others_cores())
