"""The model registry: plugins register named models, the rest of rustlab creates them by name.

Discovery follows pytest/llm: a pluggy PluginManager loads every module of the
``rustlab.plugins`` entry-point group. The core never imports a concrete plugin; built-in
plugins (``rustlab_cnn``, ...) are entry points of the rustlab distribution itself.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from rustlab import hookspecs
from rustlab.errors import RustlabError

ENTRY_POINT_GROUP = "rustlab.plugins"
DISABLE_AUTOLOAD_ENV = "RUSTLAB_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DISTRIBUTION = "rustlab"


@dataclass(frozen=True)
class ModelSpec:
    """What a plugin registers: a name, its task, a config dataclass and a builder."""

    name: str
    task: str
    config_cls: type
    build: Callable[[Any], Any]
    description: str = ""
    source: str = "?"  # the package that registered it
    # config overrides for a model small enough to train in seconds on 2 cores: what the tests,
    # the benchmarks' smoke runs and `bench kernels --quick` build (the plugin's own claim)
    smoke_config: dict = field(default_factory=dict)

    def default_config(self):
        return self.config_cls()

    def make_config(self, base: dict | None = None, **overrides):
        """A config from defaults, then ``base`` (e.g. from a checkpoint), then ``overrides``."""
        known = {f.name: f for f in dataclasses.fields(self.config_cls)}
        values = {}
        for key, value in {**(base or {}), **overrides}.items():
            if key not in known:
                raise RustlabError(
                    f"model {self.name!r} has no config key {key!r}; known keys: {', '.join(known)}"
                )
            values[key] = value
        try:
            return self.config_cls(**values)
        except (TypeError, ValueError) as exc:
            raise RustlabError(f"bad config for model {self.name!r}: {exc}") from None


@dataclass(frozen=True)
class SourceReader:
    """A data source a plugin registers: ``claims(spec)`` says whether a ``--data`` value is its
    kind, ``read(spec)`` returns a ``rustlab.data.records.Source`` (see ``rustlab_register_sources``)."""

    name: str
    claims: Callable[[str], bool]
    read: Callable[[str], Any]
    description: str = ""
    source: str = "?"  # the package that registered it


@dataclass
class Registry:
    models: dict[str, ModelSpec] = field(default_factory=dict)
    tasks: dict[str, Any] = field(default_factory=dict)
    source_readers: list[SourceReader] = field(default_factory=list)  # in registration order
    failed_plugins: dict[str, str] = field(default_factory=dict)
    extra_plugins: list = field(default_factory=list)  # registered at run time, kept across rebuilds


class _Recorder:
    """The ``register`` callable handed to a plugin's hook: it remembers who registered what."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.source = "?"

    def model(self, name, *, task, config, build, description="", smoke_config=None):
        if not dataclasses.is_dataclass(config):
            raise RustlabError(f"plugin {self.source}: config of model {name!r} must be a dataclass")
        if name in self.registry.models:
            other = self.registry.models[name].source
            warnings.warn(f"model {name!r} from {self.source} ignored: already registered by {other}")
            return
        self.registry.models[name] = ModelSpec(name, task, config, build, description, self.source,
                                               dict(smoke_config or {}))

    def task(self, task):
        self.registry.tasks.setdefault(task.name, task)

    def source_reader(self, name, *, claims, read, description=""):
        if not (callable(claims) and callable(read)):
            raise RustlabError(f"plugin {self.source}: source reader {name!r} needs callable claims and read")
        other = next((r.source for r in self.registry.source_readers if r.name == name), None)
        if other is not None:
            warnings.warn(f"source reader {name!r} from {self.source} ignored: already registered by {other}")
            return
        self.registry.source_readers.append(SourceReader(name, claims, read, description, self.source))


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points():
    autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        if autoload or dist == BUILTIN_DISTRIBUTION:
            yield ep, dist


def build_registry(extra_plugins=()) -> Registry:
    """Load built-in tasks, every plugin entry point and ``extra_plugins`` into a new Registry."""
    from rustlab import tasks as builtin_tasks
    from rustlab.data import readers as builtin_readers

    pm = _plugin_manager()
    pm.register(builtin_tasks, name="rustlab.tasks")
    pm.register(builtin_readers, name="rustlab.data.readers")
    registry = Registry(extra_plugins=list(extra_plugins))
    for ep, dist in _entry_points():
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not take rustlab down
            registry.failed_plugins[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"rustlab plugin {ep.name!r} (from {dist}) failed to load: {exc}")
    for plugin in extra_plugins:
        if pm.is_registered(plugin):
            continue  # already loaded through its entry point (e.g. an installed plugin module)
        try:
            pm.register(plugin)
        except ValueError as exc:  # pluggy: a plugin of that name is already registered
            raise RustlabError(f"plugin {_source_name(plugin)!r} is already registered ({exc})") from None

    recorder = _Recorder(registry)
    for impl in pm.hook.rustlab_register_tasks.get_hookimpls():
        recorder.source = _source_name(impl.plugin)
        impl.function(register=recorder.task)
    for hook, register, what in ((pm.hook.rustlab_register_models, recorder.model, "models"),
                                 (pm.hook.rustlab_register_sources, recorder.source_reader, "data sources")):
        for impl in hook.get_hookimpls():
            recorder.source = _source_name(impl.plugin)
            try:
                impl.function(register=register)
            except Exception as exc:  # a broken third-party plugin must not take rustlab down
                registry.failed_plugins[recorder.source] = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"rustlab plugin {recorder.source!r} failed to register its {what}: {exc}")
    for spec in registry.models.values():
        if spec.task not in registry.tasks:
            warnings.warn(f"model {spec.name!r} names unknown task {spec.task!r}")
    return registry


def _source_name(plugin) -> str:
    name = getattr(plugin, "__name__", None) or type(plugin).__name__
    return name.split(".")[0]


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = build_registry()
    return _REGISTRY


def register_plugin(plugin) -> None:
    """Add a plugin object or module at run time (tests, notebooks) on top of the entry points."""
    global _REGISTRY
    _REGISTRY = build_registry([*get_registry().extra_plugins, plugin])


def reset_registry() -> None:
    global _REGISTRY
    _REGISTRY = None


def list_models() -> list[ModelSpec]:
    return sorted(get_registry().models.values(), key=lambda s: s.name)


def get_model_spec(name: str) -> ModelSpec:
    models = get_registry().models
    if name not in models:
        known = ", ".join(sorted(models)) or "(none)"
        raise RustlabError(f"unknown model {name!r}; registered models: {known}")
    return models[name]


def get_task(name: str):
    """The task registered as ``name``; built-in tasks are found without loading the plugins."""
    from rustlab.tasks import BUILTIN_TASKS

    if name in BUILTIN_TASKS:
        return BUILTIN_TASKS[name]
    tasks = get_registry().tasks
    if name not in tasks:
        raise RustlabError(f"unknown task {name!r}; registered tasks: {', '.join(sorted(tasks))}")
    return tasks[name]


def create_model(name: str, config: dict | None = None, **overrides):
    """Build the model ``name`` from its defaults, a config dict and keyword overrides."""
    spec = get_model_spec(name)
    return spec.build(spec.make_config(config, **overrides))


def count_parameters(model) -> int:
    params = getattr(model, "parameters", None)
    return sum(p.numel() for p in params()) if callable(params) else 0
