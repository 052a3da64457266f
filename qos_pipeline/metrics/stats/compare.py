"""Group comparisons within one cell: every pair of groups, every refusal measure.

Effect sizes: the risk difference and the log risk ratio, the latter with Haldane-Anscombe's +0.5 on each
count (a 0% reference still gives a finite ratio; ``ratio_zero_count`` flags the rows where a count is 0).
Intervals: percentile intervals of the same cluster bootstrap as the rates (templates; templates x names),
the template draws shared by both groups, so the gap is paired within templates.

Test: a permutation test of group labels between names. Every name of both groups carries every template
of the design, so swapping which names belong to which group keeps the comparison within templates; under
"the group does not matter" the names are exchangeable, and the test is exact (all assignments enumerated
up to 20,000, else 10,000 seeded Monte Carlo ones). It treats names, not rows, as the unit: with two names
per group no gap can reach p < 0.3, which is the honest answer (a name effect and a group effect cannot be
told apart). A mixed-effects logistic model would need convergence and odds ratios near 0% rates; the
permutation test needs neither. p-values are adjusted across the comparisons of the cell (Holm; BH option).
"""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import LABELS, MEASURES, Cell
from qos_pipeline.metrics.stats.draws import percentile_interval
from qos_pipeline.metrics.stats.multiplicity import adjust
from qos_pipeline.taxonomy import UNJUDGED

EXACT_LIMIT = 20_000
PERMUTATIONS = 10_000


def oriented_pairs(groups: list[str], reference: str) -> list[tuple[str, str]]:
    """Every unordered pair once, as (group, vs_group): against the reference group when it is in the pair."""
    pairs = []
    for a, b in itertools.combinations(sorted(groups), 2):
        pairs.append((b, a) if a == reference else (a, b))
    return pairs


def log_rr(k_a, n_a, k_b, n_b):
    """Log risk ratio with +0.5 on every count (finite at 0%)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log((k_a + 0.5) / (n_a + 0.5)) - np.log((k_b + 0.5) / (n_b + 0.5))


def _assignments(size: int, chosen: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """0/1 rows: which names form the first group, all of them when few enough, else random ones."""
    if math.comb(size, chosen) <= EXACT_LIMIT:
        rows = np.zeros((math.comb(size, chosen), size))
        for i, combo in enumerate(itertools.combinations(range(size), chosen)):
            rows[i, list(combo)] = 1
        return rows, "exact"
    rows = np.zeros((PERMUTATIONS, size))
    for i in range(PERMUTATIONS):
        rows[i, rng.choice(size, chosen, replace=False)] = 1
    return rows, "monte carlo"


def permutation_p(k: np.ndarray, n: np.ndarray, first: np.ndarray, seed: int) -> tuple[float, str, int]:
    """Two-sided p-value of the rate difference between the names in ``first`` and the others, by
    permuting group labels between names (``k``, ``n``: per-name totals over templates and samples)."""
    if first.all() or not first.any():
        return float("nan"), "none", 0
    rows, method = _assignments(len(k), int(first.sum()), np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        diffs = rows @ k / (rows @ n) - (1 - rows) @ k / ((1 - rows) @ n)
        observed = k[first].sum() / n[first].sum() - k[~first].sum() / n[~first].sum()
    extreme = np.abs(diffs) >= abs(observed) - 1e-12
    if method == "exact":
        return float(extreme.mean()), method, len(rows)
    return float((1 + extreme.sum()) / (1 + len(rows))), method, len(rows)


def _seed(seed: int, *parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, (seed, *parts))).encode()).digest()[:8], "big")


def _row(cell: Cell, measure: str, a: str, b: str, seed: int) -> dict:
    K, n, W, V = cell.measure(measure), cell.n, cell.draws["W"], cell.draws["V"]
    ma, mb = cell.groups == a, cell.groups == b
    k_a, n_a, k_b, n_b = K[:, ma].sum(), n[:, ma].sum(), K[:, mb].sum(), n[:, mb].sum()
    unjudged = cell.counts[:, :, LABELS.index(UNJUDGED)]
    row = {"name_group": a, "vs_group": b, "measure": measure, "k": k_a, "n": n_a, "rate": k_a / n_a,
           "n_unjudged": unjudged[:, ma].sum(), "k_vs": k_b, "n_vs": n_b, "rate_vs": k_b / n_b,
           "n_unjudged_vs": unjudged[:, mb].sum()}
    row["diff"] = row["rate"] - row["rate_vs"]
    row["log_ratio"] = float(log_rr(k_a, n_a, k_b, n_b))
    row["ratio"], row["ratio_zero_count"] = math.exp(row["log_ratio"]), bool(k_a == 0 or k_b == 0)
    KW, nW = W @ K, W @ n
    clusters = int(((n[:, ma].sum(1) > 0) & (n[:, mb].sum(1) > 0)).sum())  # templates both groups have
    for suffix, weights in (("", np.ones_like(V)), ("_tn", V)):
        ka, na = (KW * weights)[:, ma].sum(1), (nW * weights)[:, ma].sum(1)
        kb, nb = (KW * weights)[:, mb].sum(1), (nW * weights)[:, mb].sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            diffs = ka / na - kb / nb
        low, high = percentile_interval(np.stack([diffs, log_rr(ka, na, kb, nb)], axis=1),
                                        np.array([row["diff"], row["log_ratio"]]))
        if clusters < 2:  # one template cannot vary under resampling: no interval rather than a point
            low, high = np.full(2, np.nan), np.full(2, np.nan)
        row.update({f"diff_ci{suffix}_low": low[0], f"diff_ci{suffix}_high": high[0],
                    f"log_ratio_ci{suffix}_low": low[1], f"log_ratio_ci{suffix}_high": high[1]})
    both = ma | mb
    p, method, count = permutation_p(K[:, both].sum(0), n[:, both].sum(0), ma[both], _seed(seed, cell.key, a, b, measure))
    row.update(p_value=p, p_method=method, permutations=count)
    return row


def group_comparisons(cell: Cell, reference: str, seed: int, p_adjust: str = "holm") -> pd.DataFrame:
    """One row per (pair of groups, measure) of the cell; p-values adjusted across all of them."""
    groups = sorted(set(cell.groups))
    rows = [_row(cell, m, a, b, seed) for m in MEASURES for a, b in oriented_pairs(groups, reference)]
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["is_reference"] = out["vs_group"] == reference
    out["p_adjusted"], out["p_adjust_method"] = adjust(out["p_value"].to_numpy(), p_adjust), p_adjust
    return out
