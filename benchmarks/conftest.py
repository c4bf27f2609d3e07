"""Benchmark settings: full size for `make bench`, tiny for the smoke run inside `make test`.

``--bench-size auto`` (the default) picks tiny when pytest-benchmark is disabled
(``--benchmark-disable``): the benchmarks then run in seconds on builtin data, so they cannot
rot, and their numbers are not meant to be read. Full size reads ../shared/data/corrosion-cls
beside the project where it exists, else the builtin set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest


def smoke_configs() -> dict:
    """Each registered model's own tiny variant (``ModelSpec.smoke_config``): what tiny mode builds."""
    from rustlab.registry import get_registry

    return {name: dict(spec.smoke_config) for name, spec in get_registry().models.items() if spec.smoke_config}


@dataclass
class BenchSettings:
    tiny: bool
    data: str | None  # None: rustlab.bench.speed_train.default_data()
    steps: int
    warmup: int
    batch_size: int | None
    model_configs: dict = field(default_factory=dict)
    predict_n: int = 20
    sample_size: int = 512  # side of synthetic JPEGs where the data has no JPEG files
    startup_repeats: int = 5


def pytest_addoption(parser):
    parser.addoption("--bench-size", choices=("auto", "tiny", "full"), default="auto",
                     help="rustlab speed benchmarks: tiny (seconds, smoke test) or full; auto: tiny when "
                          "--benchmark-disable is given, else full.")


@pytest.fixture(scope="session")
def bench_settings(request) -> BenchSettings:
    size = request.config.getoption("--bench-size")
    if size == "auto":
        size = "tiny" if request.config.getoption("benchmark_disable", False) else "full"
    if size == "tiny":
        return BenchSettings(tiny=True, data="builtin:48", steps=2, warmup=1, batch_size=8,
                             model_configs=smoke_configs(), predict_n=2, sample_size=64, startup_repeats=1)
    return BenchSettings(tiny=False, data=None, steps=30, warmup=3, batch_size=None)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Benchmarks never read or write the user's ~/.cache/rustlab (the cache build is measured)."""
    old = {k: os.environ.get(k) for k in ("RUSTLAB_CACHE", "HF_HUB_OFFLINE")}
    os.environ["RUSTLAB_CACHE"] = str(tmp_path_factory.mktemp("rustlab-bench-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def speed_report(bench_settings):
    """Every measurement of the session lands here; the terminal summary prints it as tables
    (full size only: tiny numbers mean nothing)."""
    from rustlab.bench.speed_data import SpeedReport
    from rustlab.bench.timing import machine_info

    report = SpeedReport(machine_info())
    if not bench_settings.tiny:
        _REPORTS.append(report)
    return report


_REPORTS: list = []


def pytest_terminal_summary(terminalreporter, config):
    for report in _REPORTS:
        if not (report.training or report.predict or report.startup):
            continue
        from rustlab.bench.speed_data import add_ratios
        from rustlab.bench.speed_report import format_report
        from rustlab.bench.timing import load_average

        add_ratios(report.training)
        report.machine["load_average_after"] = load_average()
        terminalreporter.section("rustlab speed (same numbers as `rustlab bench speed`)")
        terminalreporter.write_line(format_report(report))
