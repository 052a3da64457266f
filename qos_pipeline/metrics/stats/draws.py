"""Bootstrap draws shared by every table of a build.

A draw gives each resampled unit (a template, or a name within its group) a multiplicity from a
multinomial with equal probabilities: the classic nonparametric bootstrap of clusters. The draws are a
pure function of the seed and the set of ids resampled, so two cells with the same templates get the same
template draws (comparisons between them are paired), every table of a cell uses the same draws, and a
rebuild gives the same intervals.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Sequence

import numpy as np

RESAMPLES = 1000
SEED = 0


def multiplicities(ids: Sequence[str], resamples: int, seed: int) -> np.ndarray:
    """(resamples, len(ids)) integer weights, each row summing to len(ids), in the order of ``ids``."""
    order = sorted(ids)
    digest = hashlib.sha256(f"{seed}\0{len(order)}\0{chr(0).join(order)}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    drawn = rng.multinomial(len(order), np.full(len(order), 1 / len(order)), size=resamples)
    position = {name: i for i, name in enumerate(order)}
    return drawn[:, [position[i] for i in ids]].astype(np.float64)


def name_weights(names: Sequence[str], groups: Sequence[str], resamples: int, seed: int) -> np.ndarray:
    """(resamples, len(names)) weights resampling the names of each group among themselves (a group's
    size is fixed by the design; which of its names count is what varies)."""
    out = np.empty((resamples, len(names)))
    groups = np.asarray(groups)
    for group in sorted(set(groups)):
        idx = np.flatnonzero(groups == group)
        out[:, idx] = multiplicities([names[i] for i in idx], resamples, seed)
    return out


def percentile_interval(draws: np.ndarray, point: np.ndarray, level: float = 0.95
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``draws`` along axis 0 (NaN draws ignored), widened to contain ``point``:
    a percentile interval of a skewed statistic can miss its own estimate by rounding."""
    alpha = (1 - level) / 2
    with warnings.catch_warnings():  # a slice without a valid draw gets a NaN interval, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
    return np.fmin(low, point), np.fmax(high, point)
