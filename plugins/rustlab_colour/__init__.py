"""The colour-rule baseline (model ``colour-rule``): is the share of rust-coloured pixels above a
threshold chosen on the training split? No neural network, no gradient steps; it is saved,
loaded, evaluated and served like any other model, so every table shows how far the learned
models are above it."""

from rustlab import hookimpl

from rustlab_colour.model import ColourRuleConfig, build_colour_rule


@hookimpl
def rustlab_register_models(register):
    register(
        "colour-rule",
        task="classification",
        config=ColourRuleConfig,
        build=build_colour_rule,
        description="Baseline: share of rust-coloured (HSV) pixels above a threshold fitted on train",
    )
