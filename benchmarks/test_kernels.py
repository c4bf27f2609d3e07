"""Kernel-study latency, one benchmark per configuration, through the function `rustlab bench kernels` uses.

Each benchmark runs ``rustlab.bench.kernels_measure.measure_latency`` once (``pedantic``, one round):
it has its own warm-up and timed loop (``timing.timed_round``), and its median and quartiles go to
``extra_info`` beside the configuration's MACs (formula and counted) and receptive field.
`make bench` runs them at full size (the seed's CNN at 32 px, the defaults of the CLI);
`make test` runs them tiny (the plugin's smoke_config) with --benchmark-disable, as a smoke test
whose numbers mean nothing.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from rustlab.bench.kernels_data import (
    DEFAULT_IMAGE_SIZE,
    FORWARD_BATCH,
    TRAIN_BATCH,
    KernelConfig,
    LatencySettings,
)
from rustlab.bench.kernels_measure import measure_latency, smoke_config

# The CLI's default sweep: kernels 3, 5, 7 x (seed's stride 1 + pool, stride-2 conv, stride 1 no pool).
CONFIGS = [KernelConfig(k, s, p) for k in (3, 5, 7) for s, p in ((1, True), (2, False), (1, False))]
TINY_SIZE = 16  # s1+pool and s2 still keep a 2x2 map after three stages


@functools.cache
def static_costs(config: KernelConfig, tiny: bool) -> dict:
    """MACs both ways, parameters and theoretical RF: what the latency is the price of."""
    from rustlab.analysis import model_cost, theoretical_rf
    from rustlab.registry import create_model

    size = TINY_SIZE if tiny else DEFAULT_IMAGE_SIZE
    model = create_model("cnn", smoke_config("cnn") if tiny else {}, image_size=size, **config.overrides())
    cost = model_cost(model, (1, 3, size, size))
    return {"config": config.label, "image_size": size, "params": cost.params, "macs": cost.macs,
            "counted_macs": cost.counted_macs, "rf": theoretical_rf(model, (1, 3, size, size)).rf[0]}


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("what", ["forward", "train"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.slug)
def test_kernel_latency(benchmark, bench_settings, config, what, channels_last):
    tiny = bench_settings.tiny
    info = static_costs(config, tiny)
    assert info["macs"] == info["counted_macs"] > 0
    full = LatencySettings()
    steps = 1 if tiny else (full.forward_steps if what == "forward" else full.train_steps)
    batch = (FORWARD_BATCH if what == "forward" else TRAIN_BATCH) if not tiny else (1 if what == "forward" else 4)
    model_config = {**(smoke_config("cnn") if tiny else {}), **config.overrides()}
    result = benchmark.pedantic(
        measure_latency, args=("cnn", model_config, what, batch, channels_last),
        kwargs={"steps": steps, "warmup": 0 if tiny else full.warmup, "image_size": info["image_size"],
                "max_rounds": 1 if tiny else full.max_rounds,
                "min_round_seconds": 0.0 if tiny else full.min_round_seconds},
        rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(info)
    benchmark.extra_info.update({k: v for k, v in dataclasses.asdict(result).items()
                                 if isinstance(v, (int, float, str, bool))})
    assert (result.what, result.batch, result.channels_last) == (what, batch, channels_last)
    assert 0 < result.min_ms <= result.median_ms <= result.q3_ms
    assert result.steps >= steps
