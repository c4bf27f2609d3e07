"""Weight averaging (``--ema DECAY``): an exponential moving average of the weights, kept beside
the weights that train, and used wherever the run's model is scored or saved.

After every optimiser step the average moves towards the current weights by ``1 - decay``
(``torch.optim.swa_utils``' EMA; batch-norm statistics are averaged too, ``use_buffers``). The
validation pass, the choice of the best epoch, ``best``/``last.safetensors``, the calibration and
the test pass all see the average; the training state keeps both, so ``--resume`` continues
exactly. Why: the last steps of a short fine-tuning run move the weights from batch to batch,
and an average of nearby weights is a flatter, steadier solution (what SWA and SWAD found to
carry better to unseen domains). A checkpoint needs nothing new to load: it holds plain weights.
"""

from __future__ import annotations


class WeightAverage:
    """The running average of ``model``'s weights and buffers. ``update()`` after each step;
    ``module`` is a model of the same class that holds the average."""

    def __init__(self, model, decay: float):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        if not 0.0 < decay < 1.0:
            raise ValueError(f"the average's decay must be in (0, 1), got {decay}")
        self.model = model  # the weights that train (not a DDP wrapper: its parameters are these)
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(decay)), use_buffers=True)
        self.averaged.eval()

    @property
    def module(self):
        return self.averaged.module

    def update(self) -> None:
        # the first call copies the weights; every later one moves the average towards them
        self.averaged.update_parameters(self.model)

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)


def make_weight_average(model, decay: float) -> WeightAverage | None:
    """A WeightAverage for ``decay`` > 0, None for 0 (no averaging: the run's weights are used)."""
    return WeightAverage(model, decay) if decay else None
