"""The Rogan-Gladen correction of a rate measured by an imperfect judge.

A judge with sensitivity ``se`` and specificity ``sp`` reports a refusal rate q = se * p + (1 - sp) *
(1 - p) when the true rate is p, so p = (q + sp - 1) / (se + sp - 1) (Rogan & Gladen 1978). The
warehouse's corrected rates and their intervals, which carry the uncertainty of se and sp, are in
``qos_pipeline.metrics.stats.corrected``. Pure numpy.
"""

from __future__ import annotations

import numpy as np


def rogan_gladen(q, se, sp, clip: bool = True):
    """Corrected prevalence, clipped to [0, 1] (unless ``clip`` is False); NaN where the judge is no better
    than chance (se+sp<=1)."""
    q, se, sp = np.asarray(q, float), np.asarray(se, float), np.asarray(sp, float)
    j = se + sp - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(j > 0, (q + sp - 1) / j, np.nan)
    return np.clip(p, 0.0, 1.0) if clip else p


def cannot_correct(q: float, se: float, sp: float) -> str:
    """Why the observed rate ``q`` cannot be corrected with these error rates ('' when it can): a judge no
    better than chance, or a rate outside [1 - sp, se], where the correction leaves [0, 1] and a clipped
    value would look certain (every resample at 0 gives a [0, 0] interval)."""
    if not se + sp - 1 > 0:
        return f"cannot correct: the judge is no better than chance (sensitivity {se:.2f} + specificity {sp:.2f} <= 1)"
    if q < 1 - sp:
        return (f"cannot correct: the observed rate {100 * q:.1f}% is below the judge's false-positive rate "
                f"{100 * (1 - sp):.1f}%, so the correction would fall below 0; the raw rate stands uncorrected")
    if q > se:
        return (f"cannot correct: the observed rate {100 * q:.1f}% is above the judge's sensitivity "
                f"{100 * se:.1f}%, so the correction would exceed 1; the raw rate stands uncorrected")
    return ""
