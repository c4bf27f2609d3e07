"""The package metadata says what the code needs, in forms current setuptools accepts without
warnings: the Python the code runs on, an SPDX license string, and the in-tree build backend
that an sdist carries along."""

from __future__ import annotations

import importlib.util
import re
import tomllib
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_requires_python_admits_only_versions_the_code_runs_on():
    spec = SpecifierSet(PYPROJECT["project"]["requires-python"])
    # rustlab/config.py (and possibly more) imports the stdlib tomllib, new in 3.11
    uses_tomllib = [
        p.relative_to(ROOT) for p in (ROOT / "rustlab").rglob("*.py")
        if re.search(r"^\s*(import tomllib|from tomllib import)", p.read_text(encoding="utf-8"), re.M)
    ]
    if uses_tomllib:
        assert "3.10" not in spec, f"{uses_tomllib} import tomllib (3.11+), requires-python is {spec}"
    assert "3.11" in spec and "3.12" in spec and "3.13" in spec


def test_license_is_an_spdx_string_without_license_classifiers():
    project = PYPROJECT["project"]
    # the table form ({text = ...}) is deprecated and makes setuptools warn on every install
    assert isinstance(project["license"], str) and project["license"] == "MIT"
    # with an SPDX `license`, setuptools refuses "License ::" classifiers
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]


def test_build_system_needs_a_setuptools_that_reads_spdx_strings():
    build = PYPROJECT["build-system"]
    setuptools = [Requirement(r) for r in build["requires"] if Requirement(r).name == "setuptools"]
    assert setuptools, "setuptools must be a build requirement"
    # SPDX `license` strings need setuptools 77; the oldest version the range admits must have it
    assert "76.9" not in setuptools[0].specifier and "77.0" in setuptools[0].specifier


def test_in_tree_backend_is_found_and_shipped_in_the_sdist():
    build = PYPROJECT["build-system"]
    paths = build.get("backend-path", [])
    module = build["build-backend"].split(":")[0]
    if not paths:  # plain setuptools: nothing in-tree to check
        return
    files = [ROOT / p / (module.replace(".", "/") + ".py") for p in paths]
    found = [f for f in files if f.is_file()]
    assert found, f"build-backend {module!r} not found under backend-path {paths}"
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8")
    rel = found[0].relative_to(ROOT).as_posix()
    assert re.search(rf"^\s*include\s+.*{re.escape(rel)}", manifest, re.M), (
        f"MANIFEST.in must include {rel}: a wheel built from the sdist needs its build backend"
    )


def _backend():
    build = PYPROJECT["build-system"]
    if not build.get("backend-path"):
        pytest.skip("plain setuptools backend")
    pytest.importorskip("setuptools")
    module = build["build-backend"].split(":")[0]
    path = ROOT / build["backend-path"][0] / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"_rustlab_test_{module}", path)
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    return backend


def test_backend_silences_only_the_editable_notice(monkeypatch):
    """The editable-install notice (about our two package roots) goes; any other warning stays."""
    from setuptools.warnings import InformationOnly, SetuptoolsDeprecationWarning

    backend = _backend()

    def fake_build_editable(wheel_directory, config_settings=None, metadata_directory=None):
        InformationOnly.emit("Editable installation.", "Please be careful with folders ...")
        SetuptoolsDeprecationWarning.emit("Something else", "that a maintainer must see")
        return "rustlab-0.1.0-0.editable-py3-none-any.whl"

    monkeypatch.setattr(backend._setuptools, "build_editable", fake_build_editable)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert backend.build_editable("dist").endswith(".whl")
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if m.startswith("Editable installation")]
    assert [m for m in messages if m.startswith("Something else")]
    # every other hook is setuptools' own
    import setuptools.build_meta as setuptools_backend

    for hook in ("build_wheel", "build_sdist", "get_requires_for_build_wheel", "prepare_metadata_for_build_wheel"):
        assert getattr(backend, hook) is getattr(setuptools_backend, hook)


def test_readme_says_why_each_dependency_is_there():
    """The README's dependency table names every runtime and extra dependency of pyproject.toml."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Dependencies and why", 1)
    assert len(section) == 2, "README.md lost its '## Dependencies and why' section"
    table = section[1].split("\n## ", 1)[0]

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    named = {norm(word) for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", table)}
    project = PYPROJECT["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    missing = sorted({Requirement(r).name for r in requirements if norm(Requirement(r).name) not in named})
    assert not missing, f"add a row to the README's 'Dependencies and why' table for: {missing}"
