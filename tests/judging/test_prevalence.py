"""Rogan-Gladen correction: the formula (the corrected tables are tested in tests/metrics/test_stats.py)."""

from __future__ import annotations

import numpy as np
import pytest

from qos_pipeline.judging.evaluation import prevalence


def test_formula():
    # q = se p + (1 - sp)(1 - p) with p = 0.2, se = 0.9, sp = 0.8 -> q = 0.18 + 0.16 = 0.34
    assert prevalence.rogan_gladen(0.34, 0.9, 0.8) == pytest.approx(0.2)
    assert np.isnan(prevalence.rogan_gladen(0.5, 0.5, 0.4))  # no better than chance: no correction
    assert prevalence.rogan_gladen(0.01, 0.9, 0.8) == 0.0  # below the judge's false-positive floor: clipped
