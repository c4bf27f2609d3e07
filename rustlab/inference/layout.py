"""Where channels_last (NHWC) pays, per model and device type: decided by measurement, not by a guess.

``experiments/speed/channels_last.py`` times a training step and predict latency with and
without it, side by side, per model; its table (experiments/speed/channels_last.md) fills the
sets below. A model not listed stays NCHW, as does every model on a device type not measured
(the GPU path is issue 16 item 4). The pretrained plugin's models switch their own layout (their
config field ``channels_last``), so they are not listed here: rustlab leaves them alone.
"""

from __future__ import annotations

from rustlab.config import parse_setting

# Models whose CPU training step is faster in channels_last (experiments/speed/channels_last.md,
# quiet run of 2026-11-30 05:20 UTC, 2 torch threads: cnn 1.29x, unet 1.20x).
TRAIN_CPU: frozenset[str] = frozenset({"cnn", "unet"})
# Models whose CPU predict latency is faster in channels_last (same run: cnn batch 1 1.87x,
# batch 8 2.40x; unet 1.38x and 1.70x).
PREDICT_CPU: frozenset[str] = frozenset({"cnn", "unet"})

SETTINGS = ("auto", True, False)


def wants_channels_last(setting, model: str, device, purpose: str = "train") -> bool:
    """Whether ``model`` should run in channels_last on ``device`` for ``purpose`` ("train" or
    "predict"): a forced setting (True / False) wins; "auto" follows the measured sets."""
    setting = parse_setting(setting)
    if isinstance(setting, bool):
        return setting
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind != "cpu":
        return False
    return model in (TRAIN_CPU if purpose == "train" else PREDICT_CPU)
