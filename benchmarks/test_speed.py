"""Speed benchmarks of issue 7, through the same functions as `rustlab bench speed`.

Each benchmark runs one measurement of rustlab.bench (speed_train, speed_predict) once
(``pedantic``, one round):
the measurement has its own warm-up and timed loop, and its numbers (images/s, ms) go to
``extra_info`` and to the summary printed at the end. `make bench` runs them at full size;
`make test` runs them tiny with --benchmark-disable as a smoke test.
"""

from __future__ import annotations

import dataclasses

import pytest


def _once(benchmark, fn, *args, **kwargs):
    """Run ``fn`` once under pytest-benchmark (its own loop does the timing) and keep its numbers."""
    result = benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=1, iterations=1, warmup_rounds=0)
    if dataclasses.is_dataclass(result):
        benchmark.extra_info.update({k: v for k, v in dataclasses.asdict(result).items()
                                     if isinstance(v, (int, float, str, bool))})
    return result


@pytest.fixture(scope="session")
def training_bench(bench_settings, speed_report):
    from rustlab.bench.speed_train import TrainingBench

    s = bench_settings
    bench = TrainingBench(s.data, "cnn", batch_size=s.batch_size, model_config=s.model_configs.get("cnn"))
    bench.build_cache()  # the data every row trains on; test_decode_once_cache times it again
    speed_report.settings = {**bench.settings, "steps": s.steps, "warmup": s.warmup}
    return bench


def test_decode_once_cache(benchmark, training_bench, speed_report):
    stats = _once(benchmark, training_bench.build_cache)
    speed_report.cache = stats
    size = training_bench.image_size
    assert stats.reused, "the second load must come from the cache the first one wrote"
    assert stats.splits["train"] >= len(training_bench.examples) > 0
    assert stats.images == sum(stats.splits.values())
    assert stats.memory_bytes >= stats.images * 3 * size * size
    assert stats.disk_bytes >= stats.images * 3 * size * size


def test_decode_draft_mode(benchmark, bench_settings, training_bench, speed_report):
    tiny = bench_settings.tiny
    stats = _once(benchmark, training_bench.decode_stats, 16 if tiny else 64, camera_repeats=0 if tiny else 5)
    speed_report.decode = stats
    assert stats.full_ms > 0 and stats.draft_ms > 0


def _train_row(benchmark, bench_settings, training_bench, speed_report, pipeline: str, **kwargs):
    """One training pipeline (TrainingBench.naive / rustlab / bound), recorded for the summary."""
    row = _once(benchmark, getattr(training_bench, pipeline), bench_settings.steps, bench_settings.warmup, **kwargs)
    benchmark.extra_info["name"] = row.name
    speed_report.training.append(row)
    assert row.kind == pipeline
    assert 0 < row.images <= bench_settings.steps * training_bench.batch_size
    assert row.images_per_s > 0
    return row


def test_train_naive(benchmark, bench_settings, training_bench, speed_report):
    row = _train_row(benchmark, bench_settings, training_bench, speed_report, "naive")
    assert row.data_images_per_s > 0


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("workers", [0, 1])
def test_train_rustlab(benchmark, bench_settings, training_bench, speed_report, workers, channels_last):
    row = _train_row(benchmark, bench_settings, training_bench, speed_report, "rustlab", workers=workers,
                     channels_last=channels_last)
    assert (row.workers, row.channels_last) == (workers, channels_last)


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_train_bound(benchmark, bench_settings, training_bench, speed_report, channels_last):
    row = _train_row(benchmark, bench_settings, training_bench, speed_report, "bound", channels_last=channels_last)
    assert row.data_images_per_s is None  # nothing to load: the tensors are already in memory


@pytest.fixture(scope="session")
def predict_images(bench_settings, tmp_path_factory):
    from rustlab.bench.speed_predict import sample_jpegs
    from rustlab.bench.speed_train import default_data

    return sample_jpegs(bench_settings.data or default_data(), tmp_path_factory.mktemp("jpegs"),
                        count=max(4, bench_settings.predict_n), size=bench_settings.sample_size)


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("model", ["cnn", "unet"])
def test_predict(benchmark, bench_settings, predict_images, speed_report, tmp_path, model, channels_last):
    from rustlab.bench.speed_predict import measure_predictor
    from rustlab.registry import get_registry

    if model not in get_registry().models:
        pytest.skip(f"model plugin {model!r} is not installed")
    result = _once(benchmark, measure_predictor, model, predict_images, tmp_path,
                   bench_settings.model_configs.get(model), n=bench_settings.predict_n,
                   warmup=min(bench_settings.warmup, 3), channels_last=channels_last)
    speed_report.predict.append(result)
    assert result.folder_images == len(predict_images)
    assert 0 < result.pil_ms and 0 < result.path_ms and result.folder_images_per_s > 0


@pytest.mark.parametrize("model", ["unet", "effnet-lite0-cells", "unet-effnet-lite0"])
def test_predict_batchnorm_fold(benchmark, bench_settings, tmp_path, model):
    """The forward predict runs, BatchNorms folded (rustlab.inference.batchnorm_fold) against unfolded."""
    from rustlab.bench.speed_predict import measure_fold
    from rustlab.registry import get_registry

    if model not in get_registry().models:
        pytest.skip(f"model plugin {model!r} is not installed")
    config = {**({"weights": "none"} if "effnet" in model else {}), **bench_settings.model_configs.get(model, {})}
    result = _once(benchmark, measure_fold, model, tmp_path, config, n=bench_settings.predict_n,
                   warmup=min(bench_settings.warmup, 3), rounds=1 if bench_settings.tiny else 3)
    assert result["folded_batchnorms"] > 0 and result["folded_ms"] > 0 and result["plain_ms"] > 0


def test_startup(benchmark, bench_settings, predict_images, speed_report, tmp_path):
    from rustlab.bench.speed_predict import measure_startup, speed_checkpoint

    checkpoint = image = None
    if not bench_settings.tiny:  # a `rustlab predict` process takes seconds: full size only
        checkpoint = speed_checkpoint("cnn", tmp_path, bench_settings.model_configs.get("cnn"))
        image = predict_images[0]
    result = _once(benchmark, measure_startup, checkpoint, image, repeats=bench_settings.startup_repeats)
    speed_report.startup = result
    assert not result.help_imports_torch, "`rustlab --help` must not import torch"
    assert result.help_s > 0 and result.import_rustlab_ms > 0
    assert (result.predict_s is not None) == (checkpoint is not None)


# --- the CLI around the same functions (plain tests: they run in `make test`, not in `make bench`) ----------


def _cli(capsys, *args) -> tuple[int, str, str]:
    """`rustlab ARGS` in-process through its real entry point: (exit code, stdout, stderr)."""
    from rustlab.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_bench_speed_writes_tables(capsys, tmp_path):
    import json

    code, out, err = _cli(capsys, "bench", "speed", "--only", "train", "--data", "builtin:48", "--steps", "1",
                          "--warmup", "0", "--repeats", "2", "--workers", "0", "--layout", "channels_last",
                          "--batch-size", "8", "--image-size", "32", "--out", tmp_path)
    assert code == 0, err
    report = json.loads((tmp_path / "results.json").read_text())
    assert [row["name"] for row in report["training"]] == [
        "naive", "rustlab channels_last workers=0", "bound channels_last"]
    rustlab_row = report["training"][1]
    assert rustlab_row["vs_naive"] > 0 and rustlab_row["vs_bound"] > 0 and len(rustlab_row["runs"]) == 2
    assert report["cache"]["reused"] is True
    md = (tmp_path / "results.md").read_text()
    assert md.strip() == out.strip()
    assert "| naive |" in md and "--workers 0 " in md and "--layout channels_last" in md


def test_cli_bench_speed_bad_input(capsys, tmp_path):
    code, _, err = _cli(capsys, "bench", "speed", "--workers", "one")
    assert code == 2 and "--workers" in err
    code, _, err = _cli(capsys, "bench", "speed", "--only", "train", "--model", "no-such-model")
    assert code == 1 and err.startswith("error:") and "no-such-model" in err and "Traceback" not in err
    code, _, err = _cli(capsys, "bench", "speed", "--only", "train", "--data", tmp_path / "missing")
    assert code == 1 and err.startswith("error:") and "missing" in err
