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
    count = math.comb(size, chosen)
    if count <= EXACT_LIMIT:
        combos = np.array(list(itertools.combinations(range(size), chosen)), dtype=np.intp).reshape(count, chosen)
        rows = np.zeros((count, size), dtype=np.float32)
        rows[np.arange(count)[:, None], combos] = 1
        return rows, "exact"
    base = np.zeros(size, dtype=np.float32)
    base[:chosen] = 1
    return rng.permuted(np.tile(base, (PERMUTATIONS, 1)), axis=1), "monte carlo"


def permutation_p(k: np.ndarray, n: np.ndarray, first: np.ndarray, seed: int, cache: dict | None = None
                  ) -> tuple[np.ndarray, str, int]:
    """Two-sided p-value of the rate difference between the names in ``first`` and the others, by
    permuting group labels between names (``k``: per-name totals over templates and samples, one column per
    measure, or a vector; ``n``: rows per name). The same permutations serve every measure, and with a
    ``cache``, every test of the same sizes (the permutations are drawn without looking at the data, so
    each test stays exact or Monte Carlo-valid on its own)."""
    k = np.asarray(k, dtype=float)
    vector = k.ndim == 1
    k = k.reshape(len(n), -1)
    if first.all() or not first.any():
        p = np.full(k.shape[1], np.nan)
        return (p[0] if vector else p), "none", 0
    sizes = (len(n), int(first.sum()))
    drawn = cache.get(sizes) if cache is not None else None
    if drawn is None:
        drawn = _assignments(*sizes, np.random.default_rng(seed))
        if cache is not None:
            cache[sizes] = drawn
    rows, method = drawn
    totals = np.column_stack([k, n])
    if totals.sum() < 2 ** 24:  # integer sums below 2^24 are exact in float32, and its product is ~5x faster
        summed = (rows.astype(np.float32, copy=False) @ totals.astype(np.float32)).astype(float)
    else:
        summed = rows @ totals
    k_in, n_in = summed[:, :-1], summed[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        diffs = k_in / n_in[:, None] - (k.sum(0) - k_in) / (n.sum() - n_in)[:, None]
        observed = k[first].sum(0) / n[first].sum() - k[~first].sum(0) / n[~first].sum()
    extreme = np.abs(diffs) >= np.abs(observed) - 1e-12
    p = extreme.mean(axis=0) if method == "exact" else (1 + extreme.sum(axis=0)) / (1 + len(rows))
    return (float(p[0]) if vector else p), method, len(rows)


def _seed(seed: int, *parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, (seed, *parts))).encode()).digest()[:8], "big")


def _intervals(cell: Cell, measure: str, pairs: list[tuple[str, str]], points: np.ndarray) -> dict:
    """Both bootstrap intervals of the difference and the log ratio of every pair, for one measure, from
    the cell's shared group draws (one quantile pass per kind of resample). ``points``: (2P,) estimates."""
    index = {g: i for i, g in enumerate(cell.group_list)}
    ia, ib = [index[a] for a, _ in pairs], [index[b] for _, b in pairs]
    out = {}
    for suffix, by_name in (("", False), ("_tn", True)):
        kg, ng = cell.group_draws(measure, by_name)
        ka, na, kb, nb = kg[:, ia], ng[:, ia], kg[:, ib], ng[:, ib]
        with np.errstate(divide="ignore", invalid="ignore"):
            diffs = ka / na - kb / nb
        out[suffix] = percentile_interval(np.concatenate([diffs, log_rr(ka, na, kb, nb)], axis=1), points)
    return out


def _rows(cell: Cell, measure: str, pairs: list[tuple[str, str]], tests: dict) -> list[dict]:
    K, n = cell.measure(measure), cell.n
    unjudged = cell.counts[:, :, LABELS.index(UNJUDGED)]
    rows, clusters = [], []
    for a, b in pairs:
        ma, mb = cell.groups == a, cell.groups == b
        k_a, n_a, k_b, n_b = K[:, ma].sum(), n[:, ma].sum(), K[:, mb].sum(), n[:, mb].sum()
        row = {"name_group": a, "vs_group": b, "measure": measure, "k": k_a, "n": n_a, "rate": k_a / n_a,
               "n_unjudged": unjudged[:, ma].sum(), "k_vs": k_b, "n_vs": n_b, "rate_vs": k_b / n_b,
               "n_unjudged_vs": unjudged[:, mb].sum()}
        row["diff"] = row["rate"] - row["rate_vs"]
        row["log_ratio"] = float(log_rr(k_a, n_a, k_b, n_b))
        row["ratio"], row["ratio_zero_count"] = math.exp(row["log_ratio"]), bool(k_a == 0 or k_b == 0)
        p_value, method, count = tests[a, b][measure]
        row.update(p_value=p_value, p_method=method, permutations=count)
        rows.append(row)
        clusters.append(int(((n[:, ma].sum(1) > 0) & (n[:, mb].sum(1) > 0)).sum()))  # templates both groups have
    if not rows:
        return rows
    P = len(rows)
    points = np.array([r["diff"] for r in rows] + [r["log_ratio"] for r in rows])
    for suffix, (low, high) in _intervals(cell, measure, pairs, points).items():
        for j, row in enumerate(rows):
            lo, hi = (low[[j, P + j]], high[[j, P + j]]) if clusters[j] >= 2 else (np.full(2, np.nan),) * 2
            # one template cannot vary under resampling: no interval rather than a point
            row.update({f"diff_ci{suffix}_low": lo[0], f"diff_ci{suffix}_high": hi[0],
                        f"log_ratio_ci{suffix}_low": lo[1], f"log_ratio_ci{suffix}_high": hi[1]})
    return rows


def _pair_tests(cell: Cell, a: str, b: str, seed: int, cache: dict) -> dict[str, tuple[float, str, int]]:
    """The permutation test of one pair of groups for every measure, from one set of permutations."""
    both = (cell.groups == a) | (cell.groups == b)
    k = np.stack([cell.measure(m)[:, both].sum(0) for m in MEASURES], axis=1)
    p, method, count = permutation_p(k, cell.n[:, both].sum(0), (cell.groups == a)[both], _seed(seed, cell.key), cache)
    return {m: (float(p[i]), method, count) for i, m in enumerate(MEASURES)}


def group_comparisons(cell: Cell, reference: str, seed: int, p_adjust: str = "holm") -> pd.DataFrame:
    """One row per (pair of groups, measure) of the cell; p-values adjusted across all of them."""
    groups = cell.group_list
    pairs = oriented_pairs(groups, reference)
    cache: dict = {}  # one set of permutations per group sizes, shared by the cell's pairs
    tests = {(a, b): _pair_tests(cell, a, b, seed, cache) for a, b in pairs}
    rows = [row for m in MEASURES for row in _rows(cell, m, pairs, tests)]
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["is_reference"] = out["vs_group"] == reference
    out["p_adjusted"], out["p_adjust_method"] = adjust(out["p_value"].to_numpy(), p_adjust), p_adjust
    return out
