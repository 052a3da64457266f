"""The Rogan-Gladen correction of a rate measured by an imperfect judge.

A judge with sensitivity ``se`` and specificity ``sp`` reports a refusal rate q = se * p + (1 - sp) *
(1 - p) when the true rate is p, so p = (q + sp - 1) / (se + sp - 1) (Rogan & Gladen 1978). The
warehouse's corrected rates and their intervals, which carry the uncertainty of se and sp, are in
``qos_pipeline.metrics.stats.corrected``. Pure numpy.
"""

from __future__ import annotations

import numpy as np


def rogan_gladen(q, se, sp):
    """Corrected prevalence, clipped to [0, 1]; NaN where the judge is no better than chance (se+sp<=1)."""
    q, se, sp = np.asarray(q, float), np.asarray(se, float), np.asarray(sp, float)
    j = se + sp - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(j > 0, (q + sp - 1) / j, np.nan)
    return np.clip(p, 0.0, 1.0)
