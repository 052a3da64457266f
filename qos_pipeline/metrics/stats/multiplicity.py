"""Adjusting p-values for the number of comparisons, within pre-specified families.

The primary family is fixed before looking at the data: each group against the reference group on the
primary measure (config ``primary_measure``, default any_refusal), adjusted within itself. Every other
comparison of the cell (other measures, pairs of non-reference groups) is a secondary family, adjusted
apart and read as exploratory: pooling them would make the headline depend on how many side questions
were asked (30 tests put a 4-name group out of reach).
"""

from __future__ import annotations

import numpy as np

METHODS = ("holm", "bh")
ALPHA = 0.05
"""The level every finding, floor and threshold is read at."""
PRIMARY, SECONDARY = "primary", "secondary"
PRIMARY_MEASURE = "any_refusal"


def family(measure: str, against_reference: bool, primary_measure: str = PRIMARY_MEASURE) -> str:
    """``primary`` for a group against the reference group on the primary measure, else ``secondary``."""
    return PRIMARY if against_reference and measure == primary_measure else SECONDARY


_STATSMODELS = {"holm": "holm", "bh": "fdr_bh"}


def _multipletests(p: np.ndarray, method: str) -> np.ndarray:
    """Statsmodels' adjustment over the non-NaN p-values; NaN p-values stay NaN and do not count in the
    family (statsmodels would propagate them)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=_STATSMODELS[method])[1]
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (controls the family-wise error rate)."""
    return _multipletests(p, "holm")


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjustment (controls the false discovery rate)."""
    return _multipletests(p, "bh")


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """``p`` adjusted by ``method`` (``holm`` or ``bh``)."""
    if method not in METHODS:
        raise ValueError(f"p-value adjustment {method!r} unknown; use one of {METHODS}")
    return holm(p) if method == "holm" else benjamini_hochberg(p)


def adjust_within(p: np.ndarray, families: np.ndarray, method: str) -> np.ndarray:
    """``adjust`` applied within each family (same label in ``families``) on its own."""
    p, families = np.asarray(p, dtype=float), np.asarray(families)
    out = np.full_like(p, np.nan)
    for name in np.unique(families):
        mine = families == name
        out[mine] = adjust(p[mine], method)
    return out
