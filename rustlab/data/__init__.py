"""Data: decoding images safely, sources (hub, folders, parquet, builtin), splits, corrections,
caches. Part of the core: it may import the core's modules (errors, config, registry) and never
the predict path, the trainer, the CLI or the GUI (tests/test_import_graph.py)."""
