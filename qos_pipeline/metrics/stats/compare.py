"""Group comparisons within one cell: every pair of groups, every refusal measure.

Balance first: a pair is compared on the templates that every name of both groups carries
(``design.shared_templates``); rows of other templates are left out and counted (``n_dropped``). On those
templates the gap is paired: one template draw serves both groups.

Effect sizes: the risk difference and the log risk ratio (``log_rr``: +0.5 on every count only when a count
is 0, flagged in ``ratio_zero_count``; the same function computes ``disparities`` in SQL). Intervals:
percentile intervals of the cluster bootstrap; the headline one (``*_ci_tn_*``) resamples templates and
names within groups, since a claim about a group is a claim about names not in the design; ``*_ci_*``
holds names fixed (templates only) and is too narrow for such a claim when names differ within groups.

Test: a permutation test of group labels between names (exact up to ``design.EXACT_LIMIT`` splits, else
``design.PERMUTATIONS`` seeded Monte Carlo ones), on the shared templates. It tests that names are
exchangeable between the two groups, not only that the group means are equal: with very unequal name
variances (Muslim names 27 points apart, White names 2) a rejection can reflect the spread as well as the
mean. Its unit is the name: the smallest p it can give is ``design.permutation_floor`` (stored as
``p_floor``). p-values are adjusted within families (``multiplicity``): the primary one (each group vs the
reference on the primary measure) and the rest, exploratory.
"""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import LABELS, MEASURES, Cell
from qos_pipeline.metrics.stats.design import (
    EXACT_LIMIT,
    PERMUTATIONS,
    names_needed,
    permutation_floor,
    shared_templates,
)
from qos_pipeline.metrics.stats.draws import percentile_interval
from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY_MEASURE, adjust_within, family
from qos_pipeline.taxonomy import UNJUDGED


def oriented_pairs(groups: list[str], reference: str) -> list[tuple[str, str]]:
    """Every unordered pair once, as (group, vs_group): against the reference group when it is in the pair."""
    pairs = []
    for a, b in itertools.combinations(sorted(groups), 2):
        pairs.append((b, a) if a == reference else (a, b))
    return pairs


def log_rr(k_a, n_a, k_b, n_b):
    """Log risk ratio of k_a / n_a against k_b / n_b; where a count is 0 on either side, +0.5 on every
    count (Haldane-Anscombe: finite at 0%). The one definition of the ratio: ``risk_ratio``, the SQL of
    ``disparities`` and every bootstrap draw use it."""
    k_a, n_a, k_b, n_b = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (k_a, n_a, k_b, n_b)))
    add = np.where((k_a == 0) | (k_b == 0), 0.5, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log((k_a + add) / (n_a + add)) - np.log((k_b + add) / (n_b + add))


def risk_ratio(k_a, n_a, k_b, n_b) -> np.ndarray:
    """exp(``log_rr``): the ratio as the tables print it (NaN where an input is missing)."""
    return np.exp(log_rr(k_a, n_a, k_b, n_b))


def assignments(size: int, chosen: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
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
                  ) -> tuple[np.ndarray | float, str, int]:
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
        drawn = assignments(*sizes, np.random.default_rng(seed))
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


def pair_templates(cell: Cell, a: str, b: str) -> np.ndarray:
    """(T,) the templates the pair is compared on: those every name of both groups carries."""
    return shared_templates(cell.n, cell.groups == a, cell.groups == b)


def _intervals(cell: Cell, measure: str, pairs: list[tuple[str, str]], masks: list[np.ndarray],
               points: np.ndarray) -> dict:
    """Both bootstrap intervals of the difference and the log ratio of every pair, for one measure, from
    the cell's group draws on each pair's shared templates (pairs sharing a mask share the draws; one
    quantile pass per kind of resample). ``points``: (2P,) estimates."""
    index = {g: i for i, g in enumerate(cell.group_list)}
    out = {}
    for suffix, by_name in (("", False), ("_tn", True)):
        columns = []
        for (a, b), mask in zip(pairs, masks):
            kg, ng = cell.group_draws(measure, by_name, mask)
            ka, na, kb, nb = kg[:, index[a]], ng[:, index[a]], kg[:, index[b]], ng[:, index[b]]
            with np.errstate(divide="ignore", invalid="ignore"):
                columns.append((ka / na - kb / nb, log_rr(ka, na, kb, nb)))
        draws = np.column_stack([d for d, _ in columns] + [r for _, r in columns])
        out[suffix] = percentile_interval(draws, points)
    return out


def _counts(cell: Cell, measure: str, a: str, b: str, mask: np.ndarray) -> dict:
    """Counts of both sides on the shared templates, and the rows left out (as integers)."""
    K, n = cell.measure(measure), cell.n
    unjudged = cell.counts[:, :, LABELS.index(UNJUDGED)]
    row = {"name_group": a, "vs_group": b, "measure": measure, "shared_templates": int(mask.sum()),
           "templates": len(cell.templates)}
    for side, group in (("", a), ("_vs", b)):
        mine = cell.groups == group
        row.update({f"k{side}": int(K[mask][:, mine].sum()), f"n{side}": int(n[mask][:, mine].sum()),
                    f"n_unjudged{side}": int(unjudged[mask][:, mine].sum()),
                    f"n_dropped{side}": int(n[~mask][:, mine].sum()), f"names{side}": int(mine.sum())})
    return row


def _rows(cell: Cell, measure: str, pairs: list[tuple[str, str]], masks: list[np.ndarray], tests: dict
          ) -> list[dict]:
    rows = []
    for (a, b), mask in zip(pairs, masks):
        row = _counts(cell, measure, a, b, mask)
        with np.errstate(divide="ignore", invalid="ignore"):
            row["rate"], row["rate_vs"] = row["k"] / row["n"], row["k_vs"] / row["n_vs"]  # NaN: nothing shared
        row["diff"] = row["rate"] - row["rate_vs"]
        row["log_ratio"] = float(log_rr(row["k"], row["n"], row["k_vs"], row["n_vs"]))
        row["ratio"], row["ratio_zero_count"] = math.exp(row["log_ratio"]), bool(row["k"] == 0 or row["k_vs"] == 0)
        p_value, method, count = tests[a, b][measure]
        row.update(p_value=p_value, p_method=method, permutations=count,
                   p_floor=permutation_floor(row["names"], row["names_vs"]) if mask.any() else math.nan)
        rows.append(row)
    if not rows:
        return rows
    P = len(rows)
    points = np.array([r["diff"] for r in rows] + [r["log_ratio"] for r in rows])
    for suffix, (low, high) in _intervals(cell, measure, pairs, masks, points).items():
        for j, row in enumerate(rows):
            # one template cannot vary under resampling: no interval rather than a point
            lo, hi = (low[[j, P + j]], high[[j, P + j]]) if row["shared_templates"] >= 2 else (np.full(2, np.nan),) * 2
            row.update({f"diff_ci{suffix}_low": lo[0], f"diff_ci{suffix}_high": hi[0],
                        f"log_ratio_ci{suffix}_low": lo[1], f"log_ratio_ci{suffix}_high": hi[1]})
    return rows


def _pair_tests(cell: Cell, a: str, b: str, mask: np.ndarray, seed: int, cache: dict
                ) -> dict[str, tuple[float, str, int]]:
    """The permutation test of one pair of groups on its shared templates, for every measure, from one set
    of permutations."""
    both = (cell.groups == a) | (cell.groups == b)
    if not mask.any():
        return {m: (math.nan, "none", 0) for m in MEASURES}
    k = np.stack([cell.measure(m)[mask][:, both].sum(0) for m in MEASURES], axis=1)
    p, method, count = permutation_p(k, cell.n[mask][:, both].sum(0), (cell.groups == a)[both],
                                     _seed(seed, cell.key), cache)
    p_all = np.asarray(p)  # one per measure: k has a column each
    return {m: (float(p_all[i]), method, count) for i, m in enumerate(MEASURES)}


def add_families(out: pd.DataFrame, reference: str, p_adjust: str, primary_measure: str) -> pd.DataFrame:
    """Family of each comparison, p adjusted within it, and what the design allows: the adjusted p even if
    every comparison reached its floor (``p_adjusted_floor`` >= ALPHA: out of reach by design), and the
    names the group would need for its floor to pass the family's first threshold ALPHA / size."""
    out["is_reference"] = out["vs_group"] == reference
    out["family"] = [family(m, r, primary_measure) for m, r in zip(out["measure"], out["is_reference"])]
    out["p_adjusted"] = adjust_within(out["p_value"].to_numpy(), out["family"].to_numpy(), p_adjust)
    out["p_adjust_method"] = p_adjust
    out["p_adjusted_floor"] = adjust_within(out["p_floor"].to_numpy(), out["family"].to_numpy(), p_adjust)
    out["family_size"] = out.groupby("family")["p_value"].transform(lambda p: int(p.notna().sum())).astype(int)
    out["names_needed"] = pd.array([names_needed(a, b, ALPHA / max(m, 1)) for a, b, m in
                                    zip(out["names"], out["names_vs"], out["family_size"])], dtype="Int64")
    return out


def group_comparisons(cell: Cell, reference: str, seed: int, p_adjust: str = "holm",
                      primary_measure: str = PRIMARY_MEASURE) -> pd.DataFrame:
    """One row per (pair of groups, measure) of the cell, on the templates each pair shares; p-values
    adjusted within the primary and the secondary family."""
    pairs = oriented_pairs(cell.group_list, reference)
    masks = [pair_templates(cell, a, b) for a, b in pairs]
    cache: dict = {}  # one set of permutations per group sizes, shared by the cell's pairs
    tests = {(a, b): _pair_tests(cell, a, b, mask, seed, cache) for (a, b), mask in zip(pairs, masks)}
    out = pd.DataFrame([row for m in MEASURES for row in _rows(cell, m, pairs, masks, tests)])
    return out if out.empty else add_families(out, reference, p_adjust, primary_measure)
