"""Prediction-powered estimates (Angelopoulos et al., Science 2023; PPI++, Angelopoulos, Duchi & Zrnic
2023): group rates and gaps that stay valid when the judge errs, from the judge's labels of every output
plus a human-labelled random sample of the same outputs.

Per group g and measure: theta_g = lam * mean_all(f) + mean_labelled(y - lam * f), with f the judge's
indicator and y the human's. The second term removes, on average, whatever error the judge makes on that
group's outputs, so a judge that misses one group's harmful refusals more than another's biases neither
the rates nor the gap; lam (power tuning, clipped to [0, 1], tuned for each group on the other groups'
labelled outputs so that it cannot bias that group's estimate) only decides how much the judge's labels
are trusted to narrow the interval, never the centre. The pooled rate weights the groups by their outputs
(the human sample is stratified by group).

Intervals respect the design: the same cluster bootstrap as every other table (templates, then also names
within groups, ``cell.draws``) resamples both the judge part and the labelled part, so the rows of one
template (and name) move together in both. ``ppi-python`` gives the point estimate with its tuned lam and
the textbook interval that treats rows as independent (``iid_ci_*``, kept beside the others as Wilson is);
its intervals are not used as the headline because the audit's outputs are not independent. The p-value
of a gap is the design's test, a permutation of group labels between names (``permutation_p``), adjusted
in the same families as ``group_comparisons`` (the primary one: each group vs the reference group on the
primary measure).
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import numpy as np
import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.metrics.stats.cells import LABELS, Cell
from qos_pipeline.metrics.stats.compare import assignments, oriented_pairs
from qos_pipeline.metrics.stats.design import permutation_floor
from qos_pipeline.metrics.stats.draws import percentile_interval
from qos_pipeline.metrics.stats.multiplicity import PRIMARY_MEASURE, adjust_within, family

MIN_LABELLED = 2  # human-labelled outputs a group needs before its rectifier can be estimated


def _ppi():
    """ppi_py, imported lazily (numba) and without its module-level ``warnings.simplefilter('ignore')``
    reaching the rest of the process."""
    with warnings.catch_warnings():
        import ppi_py
    return ppi_py


def _sums(cell: Cell, pairs: np.ndarray, labels: tuple[str, ...]) -> dict[str, np.ndarray]:
    """(T, N) sums of one measure: all rows, judge positives; labelled rows, human positives, judge
    positives among them, both positive. ``pairs``: (T, N, judge label, human label) labelled counts."""
    idx = [LABELS.index(lab) for lab in labels]
    return {"n": cell.n, "f": cell.counts[:, :, idx].sum(axis=2), "m": pairs.sum(axis=(2, 3)),
            "y": pairs[:, :, :, idx].sum(axis=(2, 3)), "fl": pairs[:, :, idx, :].sum(axis=(2, 3)),
            "yf": pairs[:, :, idx][:, :, :, idx].sum(axis=(2, 3))}


def tuned_lambda(s: dict[str, float]) -> float:
    """PPI++'s power-tuning parameter of a mean, Cov(y, f) / ((1 + n/N) Var(f)), clipped to [0, 1]: the
    closed form of ppi_py's ``_calc_lam_glm`` for a mean (checked against it in the tests).

    Plain PPI (1) where the sample cannot estimate the covariance: with no human positive (or no human
    negative) among the labelled outputs the tuned value is 0, which would drop the judge's labels and rest
    the estimate on the sample alone, with an interval that looks exact (0 of 60 resamples to 0 every
    time); lam = 1 keeps the judge's rate, corrected by whatever errors the sample shows."""
    n, N = s["m"], s["n"]
    if n < MIN_LABELLED or N < 2 or s["y"] in (0, n):
        return 1.0
    cov = s["yf"] / n - (s["y"] / n) * (s["fl"] / n)
    total, positives = n + N, s["fl"] + s["f"]
    var = (positives - positives**2 / total) / (total - 1)
    return float(np.clip(cov / ((1 + n / N) * var), 0, 1)) if var > 0 else 1.0


def _estimate(sums: dict, mask: np.ndarray, lam: float, cell: Cell | None = None, by_name: bool = False
              ) -> np.ndarray:
    """Theta of the names in ``mask``: the point estimate, or (B,) draws of the cell's bootstrap (templates
    resampled, and names within groups with ``by_name``)."""
    def total(key: str):
        x = sums[key][:, mask]
        if cell is None:
            return x.sum()
        drawn = cell.draws["W"] @ x
        return (drawn * cell.draws["V"][:, mask] if by_name else drawn).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lam * total("f") / total("n") + (total("y") - lam * total("fl")) / total("m")


def _counts(sums: dict, mask: np.ndarray) -> dict[str, float]:
    return {k: float(v[:, mask].sum()) for k, v in sums.items()}


def iid_estimate(s: dict[str, float], lam: float) -> tuple[float, float, float]:
    """ppi_py's point estimate at ``lam`` and its 95% interval for independent rows, from the counts
    (the labelled rows' (y, f) pairs and the judge's labels of all rows, expanded)."""
    both, y_only, f_only = s["yf"], s["y"] - s["yf"], s["fl"] - s["yf"]
    cells = [int(round(v)) for v in (both, y_only, f_only, s["m"] - both - y_only - f_only)]
    y = np.repeat([1.0, 1.0, 0.0, 0.0], cells)
    yhat = np.repeat([1.0, 0.0, 1.0, 0.0], cells)
    unlabelled = np.repeat([1.0, 0.0], [int(round(s["f"])), int(round(s["n"] - s["f"]))])
    ppi = _ppi()
    point = float(np.squeeze(ppi.ppi_mean_pointestimate(y, yhat, unlabelled, lam=lam)))
    low, high = ppi.ppi_mean_ci(y, yhat, unlabelled, alpha=0.05, lam=lam)
    return point, float(np.squeeze(low)), float(np.squeeze(high))


def _group_estimates(cell: Cell, sums: dict, measure: str) -> dict[str, dict]:
    """Per group: counts, lam, the point estimate and its template / template x name draws."""
    out = {}
    for group in cell.group_list:
        mask = cell.groups == group
        s = _counts(sums, mask)
        # Tuned on the other groups' labelled outputs: tuned on its own sample, lam correlates with that
        # sample's correction and biases the estimate (-0.8 points, 3.5 standard errors, in the simulation of
        # tests/metrics/test_ppi.py); from the other groups it is independent of it, so any lam is unbiased.
        lam = tuned_lambda(_counts(sums, ~mask)) if (~mask).any() else 1.0
        ok = s["m"] >= MIN_LABELLED
        out[group] = {"counts": s, "lam": lam, "ok": ok, "mask": mask,
                      "point": _estimate(sums, mask, lam) if ok else np.nan,
                      "draws": {by: _estimate(sums, mask, lam, cell, by) if ok else None for by in (False, True)}}
    return out


def _rate_rows(cell: Cell, measure: str, groups: dict[str, dict]) -> list[dict]:
    rows, pooled = [], {"point": 0.0, False: 0.0, True: 0.0}
    total = sum(g["counts"]["n"] for g in groups.values())
    for group, g in groups.items():
        s, row = g["counts"], cast(dict[str, Any], {"measure": measure, "name_group": group})
        row.update(n=int(s["n"]), n_labelled=int(s["m"]), judge_rate=s["f"] / s["n"] if s["n"] else np.nan,
                   labelled_human_rate=s["y"] / s["m"] if s["m"] else np.nan, rate=g["point"], lam=g["lam"])
        for by, suffix in ((False, ""), (True, "_tn")):
            low, high = percentile_interval(g["draws"][by], np.asarray(g["point"])) if g["ok"] else (np.nan, np.nan)
            row.update({f"ci{suffix}_low": float(low), f"ci{suffix}_high": float(high)})
            pooled[by] = pooled[by] + (g["draws"][by] if g["ok"] else np.nan) * s["n"] / total
        row.update(dict(zip(("iid_rate", "iid_ci_low", "iid_ci_high"), iid_estimate(s, g["lam"]) if g["ok"]
                            else (np.nan,) * 3)))
        row["note"] = "" if g["ok"] else f"fewer than {MIN_LABELLED} human-labelled outputs in this group"
        pooled["point"] += (g["point"] if g["ok"] else np.nan) * s["n"] / total
        rows.append(row)
    everyone = {"measure": measure, "name_group": "all", "n": int(total),
                "n_labelled": int(sum(g["counts"]["m"] for g in groups.values())), "rate": pooled["point"],
                "note": "groups weighted by their outputs (the human sample is stratified by group)"}
    for by, suffix in ((False, ""), (True, "_tn")):
        low, high = percentile_interval(np.asarray(pooled[by]), np.asarray(pooled["point"]))
        everyone.update({f"ci{suffix}_low": float(low), f"ci{suffix}_high": float(high)})
    return rows + [everyone]


def _gap_rows(cell: Cell, measure: str, groups: dict[str, dict], reference: str, sums: dict) -> list[dict]:
    rows = []
    for a, b in oriented_pairs(cell.group_list, reference):
        ga, gb = groups[a], groups[b]
        sa, sb = ga["counts"], gb["counts"]
        row = {"measure": measure, "name_group": a, "vs_group": b, "is_reference": b == reference,
               "n": int(sa["n"]), "n_vs": int(sb["n"]), "n_labelled": int(sa["m"]), "n_labelled_vs": int(sb["m"]),
               "rate": ga["point"], "rate_vs": gb["point"], "lam": ga["lam"], "lam_vs": gb["lam"],
               "judge_diff": sa["f"] / sa["n"] - sb["f"] / sb["n"], "diff": ga["point"] - gb["point"]}
        for by, suffix in ((False, ""), (True, "_tn")):
            ok = ga["ok"] and gb["ok"]
            draws = ga["draws"][by] - gb["draws"][by] if ok else np.array([np.nan])
            low, high = percentile_interval(draws, np.asarray(row["diff"])) if ok else (np.nan, np.nan)
            row.update({f"diff_ci{suffix}_low": float(low), f"diff_ci{suffix}_high": float(high)})
        if ga["ok"] and gb["ok"]:
            row.update(zip(("p_value", "p_method", "permutations"), permutation_p(cell, sums, a, b, row["diff"])))
        else:
            row.update(p_value=np.nan, p_method="none", permutations=0)
        row["p_floor"] = permutation_floor(int((cell.groups == a).sum()), int((cell.groups == b).sum()))
        rows.append(row)
    return rows


def permutation_p(cell: Cell, sums: dict, a: str, b: str, observed: float, seed: int = 0
                  ) -> tuple[float, str, int]:
    """Two-sided p-value of the prediction-powered gap by permuting group labels between names, the test of
    ``group_comparisons`` carried over: under "the group does not matter" the names of both groups are
    exchangeable, so every assignment of them is recomputed with the correction of the names it holds. One
    lambda serves every assignment (tuned on both groups' labelled outputs, which no assignment changes);
    the observed statistic is recomputed with it too, so the test compares like with like."""
    both = (cell.groups == a) | (cell.groups == b)
    totals = np.column_stack([sums[k][:, both].sum(axis=0) for k in ("f", "n", "y", "fl", "m")])
    lam = tuned_lambda(dict(zip(("f", "n", "y", "fl", "m"), totals.sum(axis=0))) | {
        "yf": float(sums["yf"][:, both].sum())})
    first = (cell.groups == a)[both]
    rows, method = assignments(len(first), int(first.sum()), np.random.default_rng(seed))

    def theta(s: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return lam * s[..., 0] / s[..., 1] + (s[..., 2] - lam * s[..., 3]) / s[..., 4]

    inside = rows @ totals
    diffs = theta(inside) - theta(totals.sum(axis=0) - inside)
    stat = theta(totals[first].sum(axis=0)) - theta(totals[~first].sum(axis=0))
    extreme = np.nan_to_num(np.abs(diffs), nan=-1.0) >= abs(stat) - 1e-12
    p = extreme.mean() if method == "exact" else (1 + extreme.sum()) / (1 + len(rows))
    return float(p), method, len(rows)


def ppi_tables(cell: Cell, pairs: np.ndarray, reference: str, p_adjust: str = "holm",
               primary: str = PRIMARY_MEASURE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(label_rates_ppi rows, group_comparisons_ppi rows) of one cell with ``pairs`` (T, N, judge label,
    human label): the labelled outputs' counts on the cell's grid."""
    rates: list[dict] = []
    gap_rows: list[dict] = []
    for measure, labels in taxonomy.MEASURES.items():
        sums = _sums(cell, pairs, labels)
        groups = _group_estimates(cell, sums, measure)
        rates += _rate_rows(cell, measure, groups)
        gap_rows += _gap_rows(cell, measure, groups, reference, sums)
    gaps = pd.DataFrame(gap_rows)
    if len(gaps):  # the same families as group_comparisons (multiplicity.family), adjusted apart
        gaps["family"] = [family(m, r, primary) for m, r in zip(gaps["measure"], gaps["is_reference"])]
        gaps["p_adjusted"] = adjust_within(gaps["p_value"].to_numpy(), gaps["family"].to_numpy(), p_adjust)
        gaps["p_adjust_method"] = p_adjust
    return pd.DataFrame(rates), gaps
