"""Rust grades from a rusted share (rustlab.inference.grade): the standards' band edges."""

from __future__ import annotations

import math

import pytest

from rustlab.inference.grade import astm_d610, grades, iso_4628_3


@pytest.mark.parametrize("percent, grade", [
    (0.0, 10), (0.01, 10), (0.011, 9), (0.03, 9), (0.05, 8), (0.1, 8), (0.2, 7), (0.3, 7), (0.5, 6), (1.0, 6),
    (2.0, 5), (3.0, 5), (5.0, 4), (10.0, 4), (12.0, 3), (16.0, 3), (20.0, 2), (33.0, 2), (40.0, 1), (50.0, 1),
    (50.1, 0), (100.0, 0)])
def test_astm_d610_bands(percent, grade):
    assert astm_d610(percent / 100) == grade


@pytest.mark.parametrize("percent, degree", [
    (0.0, "Ri 0"), (0.01, "Ri 1"), (0.05, "Ri 1"), (0.3, "Ri 2"), (0.5, "Ri 2"), (0.8, "Ri 3"), (1.0, "Ri 3"),
    (5.0, "Ri 4"), (8.0, "Ri 4"), (9.0, "Ri 5"), (60.0, "Ri 5")])
def test_iso_4628_3_degrees(percent, degree):
    assert iso_4628_3(percent / 100) == degree


def test_no_area_no_grade_and_out_of_range_is_clipped():
    assert grades(None) == {"astm_d610": None, "iso_4628_3": None}
    assert astm_d610(math.nan) is None
    assert astm_d610(1.5) == 0 and astm_d610(-0.1) == 10
