"""Adjusting the p-values of a family of comparisons (one model's group gaps) for their number."""

from __future__ import annotations

import numpy as np

METHODS = ("holm", "bh")


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (controls the family-wise error rate); NaN p-values stay NaN and do
    not count in the family."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjustment (controls the false discovery rate); NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 1.0
    for i in range(m - 1, -1, -1):
        running = min(running, p[order[i]] * m / (i + 1))
        out[order[i]] = min(1.0, running)
    return out


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    if method not in METHODS:
        raise ValueError(f"p-value adjustment {method!r} unknown; use one of {METHODS}")
    return holm(p) if method == "holm" else benjamini_hochberg(p)
