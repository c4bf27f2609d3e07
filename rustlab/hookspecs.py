"""The hooks a rustlab plugin may implement (pluggy, as in pytest and simonw/llm).

A plugin is any importable module found through the ``rustlab.plugins`` entry-point group
that defines functions decorated with ``rustlab.hookimpl``::

    import rustlab

    @rustlab.hookimpl
    def rustlab_register_models(register):
        register("my-net", task="classification", config=MyConfig, build=build_my_net)
"""

import pluggy

PROJECT = "rustlab"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def rustlab_register_models(register):
    """Register model plugins.

    ``register(name, *, task, config, build, description="", smoke_config=None)``: ``task``
    names a registered task ("classification" or "segmentation"), ``config`` is a dataclass whose
    fields all have defaults, ``build(config)`` returns the model. ``smoke_config`` (a dict of
    config overrides) is a tiny variant that trains in seconds: tests and benchmark smoke runs
    build it.
    """


@hookspec
def rustlab_register_tasks(register):
    """Register task objects (loss, metrics, targets, post-processing): ``register(task)``."""


@hookspec
def rustlab_register_sources(register):
    """Register data source readers: ``register(name, *, claims, read, description="")``.

    ``claims(spec)`` gets a ``--data`` value (a string) and says whether it is this reader's kind;
    it must be cheap and must not raise. ``read(spec)`` returns a ``rustlab.data.records.Source``
    and reports bad input as ``rustlab.errors.DataError`` with a one-line message. Plugins'
    readers are asked before rustlab's own (builtin, parquet, segmentation-folder, image-folder,
    hub), so a narrow claim (a ``toy:`` prefix, a folder holding an ``annotations.json``) wins
    over the catch-all folder reader. ``load_source`` then adds ``--negatives`` and checks masks
    and emptiness for every reader alike.
    """
