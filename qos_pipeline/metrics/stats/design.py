"""What a design allows a comparison to claim: the templates two groups share, and the smallest p-value
their names can give.

Balance: a gap paired within template is only paired on templates that every name of both groups carries.
``shared_templates`` finds them; every comparison (design-based, model comparisons, and judge-error-robust
estimates) is computed on them alone, and the rows left out are counted, never silently mixed in: a group
missing its least-refused templates would otherwise look refused more (on simulated null data the
permutation test then rejected 97% of the time).

Floor: the permutation test of group labels between names can give no p-value below one over the number of
ways to split the names (two over it when both groups have as many names, since a split and its mirror
image are equally extreme). With 4 names against 8 that is 1/495 = 0.00202, whatever the gap: a family of
comparisons adjusted for its size may put significance out of reach. ``permutation_floor`` gives the floor,
``names_needed`` how many names the group would need to get under a threshold.
"""

from __future__ import annotations

import math

import numpy as np

EXACT_LIMIT = 20_000
"""Splits of the names enumerated exactly up to this many; beyond, Monte Carlo (``PERMUTATIONS``)."""
PERMUTATIONS = 10_000
MAX_NAMES = 200  # names_needed looks no further: beyond, the Monte Carlo floor decides anyway


def shared_templates(n: np.ndarray, *names: np.ndarray) -> np.ndarray:
    """(T,) mask of the templates on which every name selected by each of ``names`` ((N,) masks) has at
    least one row (``n``: (T, N) rows per template x name)."""
    chosen = np.zeros(n.shape[1], dtype=bool)
    for mask in names:
        chosen |= np.asarray(mask, dtype=bool)
    if not chosen.any():
        return np.zeros(n.shape[0], dtype=bool)
    return np.asarray((n[:, chosen] > 0).all(axis=1))


def splits(size: int, chosen: int) -> int:
    """Ways to choose which ``chosen`` of ``size`` names form the first group."""
    return math.comb(size, chosen)


def permutation_floor(names: int, names_vs: int) -> float:
    """The smallest two-sided p-value the permutation test of ``names`` against ``names_vs`` names can give
    (NaN when a side has no name): 1 / splits, 2 / splits with equal sides, 1 / (1 + PERMUTATIONS) once
    the splits are sampled (``compare.permutation_p`` counts the observed split among them)."""
    if names < 1 or names_vs < 1:
        return float("nan")
    count = splits(names + names_vs, names)
    if count > EXACT_LIMIT:
        return 1 / (1 + PERMUTATIONS)
    return (2 if names == names_vs else 1) / count


def names_needed(names: int, names_vs: int, threshold: float) -> int | None:
    """The fewest names the group would need (against ``names_vs``) for its floor to be at most
    ``threshold``; None when it already is, or when no number up to MAX_NAMES gets there."""
    if not names_vs or permutation_floor(names, names_vs) <= threshold:
        return None
    for more in range(max(names, 1) + 1, MAX_NAMES + 1):
        if permutation_floor(more, names_vs) <= threshold:
            return more
    return None
