"""Static and gradient-based analysis of models: cost (params, MACs, shapes) and receptive fields.

Backs ``rustlab bench kernels``: kernel size and stride trade cost against how much of the
image a unit sees. Every result is a dataclass; ``dataclasses.asdict`` turns it into JSON.
Imports nothing else of rustlab.
"""

from rustlab.analysis.cost import (
    LayerCost,
    ModelCost,
    StageShape,
    counted_macs,
    formula_macs,
    layer_table,
    model_cost,
    stage_shapes,
)
from rustlab.analysis.receptive_field import (
    EffectiveRF,
    ReceptiveField,
    RFLayer,
    effective_rf,
    erf_map,
    theoretical_rf,
)

__all__ = [
    "LayerCost",
    "ModelCost",
    "StageShape",
    "layer_table",
    "formula_macs",
    "counted_macs",
    "model_cost",
    "stage_shapes",
    "RFLayer",
    "ReceptiveField",
    "EffectiveRF",
    "theoretical_rf",
    "effective_rf",
    "erf_map",
]
