"""Measurements behind `rustlab bench ...` and the pytest-benchmark suite in benchmarks/.

Nothing heavy is imported here: `rustlab bench --help` must stay as fast as `rustlab --help`.
``rustlab.bench.speed`` holds the speed measurements (``speed_report`` their tables),
``rustlab.bench.kernels`` the kernel study, ``rustlab.bench.cli`` the click group.
"""
