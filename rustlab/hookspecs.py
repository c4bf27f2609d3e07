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

    ``register(name, *, task, config, build, description="")``: ``task`` names a registered
    task ("classification" or "segmentation"), ``config`` is a dataclass whose fields all have
    defaults, ``build(config)`` returns the model.
    """


@hookspec
def rustlab_register_tasks(register):
    """Register task objects (loss, metrics, targets, post-processing): ``register(task)``."""
