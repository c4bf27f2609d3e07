"""Measurements behind `rustlab bench ...` and the pytest-benchmark suite in benchmarks/.

Nothing heavy is imported here: `rustlab bench --help` must stay as fast as `rustlab --help`.

- ``timing``: the one timed loop, the other-processes CPU meter and the contention threshold;
- ``speed`` drives `bench speed` over ``speed_train`` (the trainer's loader, model, step and
  epoch loop) and ``speed_predict`` (the Predictor, cold start); ``speed_data`` holds its
  records, ``speed_report`` its tables, ``speed_results`` the committed results files and
  ``speed_table`` the docs' summary table generated from them;
- ``kernels`` drives `bench kernels` over ``kernels_measure``; ``kernels_data`` holds its
  records, ``kernels_report`` its outputs;
- ``cli``: the click group.

Drivers import records and reports; records and reports import no driver.
"""
