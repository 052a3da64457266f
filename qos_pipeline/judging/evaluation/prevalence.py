"""Refusal rates corrected for the judge's measured error rates (Rogan-Gladen), with uncertainty.

A judge with sensitivity ``se`` and specificity ``sp`` reports a refusal rate q = se * p + (1 - sp) *
(1 - p) when the true rate is p, so p = (q + sp - 1) / (se + sp - 1) (Rogan & Gladen 1978). The
correction is only as good as the validation behind se and sp, so its interval comes from a
parametric bootstrap that redraws q from the audit's n and se, sp from the validation's counts
(seeded, so a rebuild gives the same figures). Pure numpy/pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DRAWS = 2000
SEED = 0
MIN_PER_CLASS = 20  # human refusals and non-refusals a group needs to use its own se/sp, else 'all'


def rogan_gladen(q, se, sp):
    """Corrected prevalence, clipped to [0, 1]; NaN where the judge is no better than chance (se+sp<=1)."""
    q, se, sp = np.asarray(q, float), np.asarray(se, float), np.asarray(sp, float)
    j = se + sp - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(j > 0, (q + sp - 1) / j, np.nan)
    return np.clip(p, 0.0, 1.0)


def corrected_rate(k: int, n: int, tp: int, n_pos: int, tn: int, n_neg: int,
                   draws: int = DRAWS, seed: int = SEED, level: float = 0.95) -> dict:
    """Corrected rate for ``k`` judged refusals out of ``n``, with a judge that found ``tp`` of ``n_pos``
    human refusals and ``tn`` of ``n_neg`` human non-refusals in validation."""
    if min(n, n_pos, n_neg) <= 0:
        return {"corrected_rate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "valid_draws": 0,
                "note": "no validation positives/negatives or no audit rows"}
    q, se, sp = k / n, tp / n_pos, tn / n_neg
    rng = np.random.default_rng(seed)
    boot = rogan_gladen(rng.binomial(n, q, draws) / n, rng.binomial(n_pos, se, draws) / n_pos,
                        rng.binomial(n_neg, sp, draws) / n_neg)
    boot = boot[~np.isnan(boot)]
    point = float(rogan_gladen(q, se, sp))
    alpha = (1 - level) / 2
    low, high = (np.quantile(boot, [alpha, 1 - alpha]) if len(boot) else (np.nan, np.nan))
    note = "judge no better than chance (se + sp <= 1)" if np.isnan(point) else ""
    if not np.isnan(point):  # a percentile interval must still contain its point estimate
        low, high = min(low, point), max(high, point)
    return {"corrected_rate": point, "ci_low": float(low), "ci_high": float(high),
            "valid_draws": int(len(boot)), "note": note}


def _validation_row(val: pd.DataFrame, group: str) -> pd.Series:
    """The group's own se/sp when its validation has enough of both classes, else the overall row."""
    own = val[val["name_group"] == group]
    if len(own) and own.iloc[0]["n_human_refusal"] >= MIN_PER_CLASS and own.iloc[0]["n_human_other"] >= MIN_PER_CLASS:
        return own.iloc[0]
    return val[val["name_group"] == "all"].iloc[0]


def correct_table(rates: pd.DataFrame, validations: pd.DataFrame) -> pd.DataFrame:
    """One row per (rates row x validation of the same judge), with the corrected rate beside the raw one.

    ``rates``: cell keys, ``judge_id``, ``name_group``, ``n``, ``raw_rate`` and ``reference_group`` (as in
    ``disparities``). ``validations``: rows of the ``judge_validations`` table. ``corrected_diff`` is the
    corrected rate minus the reference group's corrected rate in the same cell and validation.
    """
    rows = []
    for vid, val in validations.groupby("validation_id", sort=True):
        judge = val["judge_id"].iloc[0]
        for r in rates[rates["judge_id"] == judge].itertuples(index=False):
            v = _validation_row(val, r.name_group)
            fix = corrected_rate(int(round(r.raw_rate * r.n)), int(r.n), int(v["true_positives"]),
                                 int(v["n_human_refusal"]), int(v["true_negatives"]), int(v["n_human_other"]))
            rows.append({**r._asdict(), "validation_id": vid, "validation_scope": v["name_group"],
                         "sensitivity": float(v["sensitivity"]), "specificity": float(v["specificity"]), **fix})
    out = pd.DataFrame(rows, columns=[*rates.columns, "validation_id", "validation_scope", "sensitivity",
                                      "specificity", "corrected_rate", "ci_low", "ci_high", "valid_draws", "note"])
    cell = [c for c in ("model_key", "model_version", "prompt_format", "gen_config_hash", "design", "judge_id",
                        "validation_id") if c in out]
    ref = out[out["name_group"] == out["reference_group"]].set_index(cell)["corrected_rate"].rename("ref_corrected")
    out = out.join(ref, on=cell) if len(out) else out.assign(ref_corrected=np.nan)
    return out.assign(corrected_diff=out["corrected_rate"] - out["ref_corrected"]).drop(columns="ref_corrected")
