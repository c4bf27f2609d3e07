"""The plugin registry: discovery, create_model, errors, third-party plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
import torch
from conftest import ROOT, run_cli, tiny_config

import rustlab
from rustlab.errors import RustlabError
from rustlab.registry import create_model, get_model_spec, get_task, list_models, register_plugin, reset_registry

MODEL_NAMES = [spec.name for spec in list_models()]


def test_builtin_cnn_is_registered_through_its_entry_point():
    spec = get_model_spec("cnn")
    assert spec.task == "classification"
    assert spec.source == "rustlab_cnn"


def test_core_never_imports_a_concrete_plugin():
    offenders = []
    for path in (ROOT / "rustlab").rglob("*.py"):
        text = path.read_text()
        for plugin in ("rustlab_cnn", "rustlab_unet", "rustlab_colour"):
            if f"import {plugin}" in text or f"from {plugin}" in text:
                offenders.append(f"{path.name}: {plugin}")
    assert offenders == []


def test_unknown_model_lists_registered_names():
    with pytest.raises(RustlabError) as exc:
        create_model("no-such-net")
    assert "cnn" in str(exc.value) and "no-such-net" in str(exc.value)


def test_unknown_override_key_is_an_error():
    with pytest.raises(RustlabError, match="no config key 'kernal_size'"):
        create_model("cnn", kernal_size=5)


def test_overrides_reach_the_model():
    model = create_model("cnn", widths=[4, 8, 8], kernel_size=5, hidden=16)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 8]
    assert all(c.kernel_size == (5, 5) for c in convs)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_registered_model_builds_and_runs(name):
    spec = get_model_spec(name)
    task = get_task(spec.task)
    config = tiny_config(name)
    model = create_model(name, **config, **task.model_overrides(["no_rust", "rust"]))
    size = config.get("image_size", 32)
    x = torch.randn(2, 3, size, size)
    out = model(x)
    out.float().sum().backward() if out.requires_grad else None
    if spec.task == "classification":
        assert out.shape == (2, 2)
    else:
        assert out.shape[0] == 2 and out.shape[-2:] == (size, size)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_registered_model_trains_through_the_cli(name, tmp_path, capsys):
    sets = [a for k, v in tiny_config(name).items() for a in ("--set", f"{k}={v}")]
    code, out, err = run_cli(capsys, "train", "--model", name, "--data", "builtin:48", "--epochs", "1",
                             "--batch-size", "16", "--device", "cpu", "--out", tmp_path, "--name", "r", *sets)
    assert code == 0, err
    assert (tmp_path / "r" / "best.safetensors").is_file()


@dataclass
class TinyLinearConfig:
    image_size: int = 16
    num_classes: int = 2


class _ThrowawayPlugin:
    """A plugin registered at run time, as a notebook or test would."""

    @rustlab.hookimpl
    def rustlab_register_models(self, register):
        def build(cfg):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * cfg.image_size**2, cfg.num_classes))

        register("tiny-linear", task="classification", config=TinyLinearConfig, build=build,
                 description="throwaway test plugin")


@pytest.fixture
def throwaway_plugin():
    register_plugin(_ThrowawayPlugin())
    yield
    reset_registry()


def test_runtime_plugin_appears_in_models_and_trains(throwaway_plugin, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "tiny-linear" in out and "cnn" in out
    code, _, err = run_cli(capsys, "train", "--model", "tiny-linear", "--data", "builtin:48", "--epochs", "1",
                           "--device", "cpu", "--out", tmp_path, "--name", "t")
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "t", "--json")
    assert code == 0, err
    assert '"model": "tiny-linear"' in out


def _install_fake_distribution(site, name, module_source):
    """A minimal installed distribution: a module plus dist-info with a rustlab.plugins entry point."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[rustlab.plugins]\n{name} = {name}\n")


THIRD_PARTY = """
    from dataclasses import dataclass
    import torch, rustlab

    @dataclass
    class Cfg:
        image_size: int = 16
        num_classes: int = 2

    @rustlab.hookimpl
    def rustlab_register_models(register):
        register("ext-linear", task="classification", config=Cfg,
                 build=lambda c: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, c.num_classes)))
"""


def _models_in_subprocess(site, env_extra=None):
    import os

    env = {**os.environ, "PYTHONPATH": str(site), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rustlab", "models"], capture_output=True, text=True, env=env,
                          timeout=120)


def test_installed_third_party_plugin_is_discovered_and_broken_one_warns(tmp_path):
    _install_fake_distribution(tmp_path, "rustlab_ext_good", THIRD_PARTY)
    _install_fake_distribution(tmp_path, "rustlab_ext_broken", "raise ImportError('missing dependency foo')\n")
    result = _models_in_subprocess(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ext-linear" in result.stdout and "rustlab_ext_good" in result.stdout
    assert "cnn" in result.stdout
    assert "rustlab_ext_broken" in result.stderr and "missing dependency foo" in result.stderr
    assert "Traceback" not in result.stderr

    disabled = _models_in_subprocess(tmp_path, {"RUSTLAB_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert disabled.returncode == 0
    assert "ext-linear" not in disabled.stdout and "cnn" in disabled.stdout
    assert "rustlab_ext_broken" not in disabled.stderr
