"""Every committed run config (experiments/**/*.toml) still parses and builds its model.

A renamed setting or plugin field would otherwise only show when someone reruns an experiment."""

from __future__ import annotations

import pytest
from conftest import ROOT

from rustlab.config import resolve_config
from rustlab.registry import get_model_spec

CONFIGS = sorted((ROOT / "experiments").rglob("*.toml"))


def test_the_recipe_is_among_them():
    assert ROOT / "experiments" / "cnn_corrosion.toml" in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "experiments")))
def test_config_resolves_and_builds(path):
    cfg = resolve_config(str(path))
    spec = get_model_spec(cfg.model)
    model_config = spec.make_config(cfg.model_config, **({"image_size": cfg.image_size} if cfg.image_size else {}))
    model = spec.build(model_config)
    assert sum(p.numel() for p in model.parameters()) > 0 or callable(getattr(model, "fit", None))
