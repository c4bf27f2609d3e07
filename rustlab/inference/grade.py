"""Rust grades from the rusted share of a photo: ASTM D610 (SSPC-VIS 2) and ISO 4628-3.

An inspector's report gives a grade, not an IoU. Both standards grade the rusted percentage of a
painted steel surface; here the percentage is the segmenter's share of rust pixels in the photo
(``Prediction.rust_area``). What a photo-based grade can and cannot claim (a photo is not the
whole surface, perspective skews area): docs/segmentation.md, "Rust grade".
"""

from __future__ import annotations

import math

# ASTM D610-08 (2019) / SSPC-VIS 2, Table 1: grade -> the largest rusted percentage it allows
# (10: at most 0.01 %; ...; 1: over 33 and at most 50 %; 0: over 50 %).
ASTM_D610 = ((10, 0.01), (9, 0.03), (8, 0.1), (7, 0.3), (6, 1.0), (5, 3.0), (4, 10.0), (3, 16.0),
             (2, 33.0), (1, 50.0), (0, 100.0))
# ISO 4628-3:2016, Table 1: degree -> its reference rusted area in percent. The standard gives
# reference values and pictures, not bands; a measured share takes the lowest degree whose
# reference value it does not exceed (Ri 0 only for no rust at all).
ISO_4628_3 = (("Ri 0", 0.0), ("Ri 1", 0.05), ("Ri 2", 0.5), ("Ri 3", 1.0), ("Ri 4", 8.0), ("Ri 5", 100.0))


def _percent(rust_area) -> float | None:
    if rust_area is None:
        return None
    value = float(rust_area)
    if not math.isfinite(value):
        return None
    return min(max(value, 0.0), 1.0) * 100.0


def astm_d610(rust_area) -> int | None:
    """ASTM D610 grade (10 best .. 0 worst) of a rusted fraction (0-1); None without one."""
    percent = _percent(rust_area)
    if percent is None:
        return None
    return next(grade for grade, limit in ASTM_D610 if percent <= limit)


def iso_4628_3(rust_area) -> str | None:
    """ISO 4628-3 degree of rusting ("Ri 0" .. "Ri 5") of a rusted fraction (0-1); None without one."""
    percent = _percent(rust_area)
    if percent is None:
        return None
    return next(degree for degree, limit in ISO_4628_3 if percent <= limit)


def grades(rust_area) -> dict:
    """Both grades, as the results file, predict's output, the GUI and the report show them."""
    return {"astm_d610": astm_d610(rust_area), "iso_4628_3": iso_4628_3(rust_area)}
