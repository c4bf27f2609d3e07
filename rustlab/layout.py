"""Where channels_last (NHWC) pays, per model and device type: decided by measurement, not by a guess.

``experiments/speed/channels_last.py`` times a training step and predict latency with and
without it, side by side, per model; its table (experiments/speed/channels_last.md) fills the
sets below. A model not listed stays NCHW, as does every model on a device type not measured
(the GPU path is issue 16 item 4). The pretrained plugin's models switch their own layout (their
config field ``channels_last``), so they are not listed here: rustlab leaves them alone.
"""

from __future__ import annotations

# Models whose CPU training step is faster in channels_last (experiments/speed/channels_last.md:
# cnn 1.04x with 1 torch thread, 1.18x with 2; the unet is not measured yet and stays NCHW).
TRAIN_CPU: frozenset[str] = frozenset({"cnn"})
# Models whose CPU predict latency is faster in channels_last (cnn: batch 1 1.80x / 1.15x, batch 8
# 1.22x / 1.53x with 1 / 2 torch threads).
PREDICT_CPU: frozenset[str] = frozenset({"cnn"})

SETTINGS = ("auto", True, False)


def parse_setting(value):
    """A config value (bool, or "auto"/"true"/"false" from a flag or TOML) as "auto", True or False."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "on", "yes", "1"):
            return True
        if lowered in ("false", "off", "no", "0"):
            return False
        return lowered
    return value


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
