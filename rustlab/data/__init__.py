"""Data: decoding images safely, sources (hub, folders, parquet, builtin), splits, caches."""
