"""Measurements behind `rustlab bench ...` and the pytest-benchmark suite in benchmarks/.

Nothing heavy is imported here: `rustlab bench --help` must stay as fast as `rustlab --help`.

- ``timing``: the one timed loop, the other-processes CPU meter and the contention threshold;
- ``speed`` drives `bench speed` over ``speed_train`` (the trainer's loader, model, step and
  epoch loop) and ``speed_predict`` (the Predictor, cold start); ``speed_data`` holds its
  records, ``speed_report`` its tables, ``speed_results`` the committed results files and
  ``speed_table`` the docs' summary table generated from them; ``speed_bound`` folder predict
  against the 2-core bound;
- ``kernels`` drives `bench kernels` over ``kernels_measure``; ``kernels_data`` holds its
  records, ``kernels_report`` its outputs;
- ``collectors`` drives `bench collectors` (leave one collector out), with ``collectors_stats``
  (the paired bootstrap), ``collectors_report`` and ``collectors_cli``;
- ``cli``: the click group.

Drivers import records and reports; records and reports import no driver. May import the core,
rustlab.inference, rustlab.training and rustlab.analysis; never the CLI or the GUI.
"""
