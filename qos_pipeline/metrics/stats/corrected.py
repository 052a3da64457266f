"""Refusal rates corrected for the judge's measured error rates, with the judge's uncertainty carried in.

Rogan-Gladen: a judge with sensitivity se and specificity sp reports q = se p + (1 - sp)(1 - p) for a true
rate p, so p = (q + sp - 1) / (se + sp - 1). One joint bootstrap redraws the audit (templates resampled,
the same draws as every other table) and the judge: se and sp from their Beta posteriors under a uniform
prior (Beta(tp + 1, fn + 1), Beta(tn + 1, fp + 1)), so a judge that was right on all of 29 refusals still
carries the uncertainty of 29 cases. Groups corrected with the same validation scope share the judge draws,
so the corrected gap is paired. A warning names validations that cannot stand for the audited outputs.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from qos_pipeline.judging.evaluation.prevalence import cannot_correct, rogan_gladen
from qos_pipeline.metrics.stats.cells import Cell
from qos_pipeline.metrics.stats.draws import percentile_interval

MIN_PER_CLASS = 20  # human refusals and non-refusals a group needs to use its own error rates, else 'all'


def beta_draws(hits: float, total: float, resamples: int, seed: int) -> np.ndarray:
    """Posterior draws of a proportion after ``hits`` of ``total`` under a uniform prior."""
    return np.random.default_rng(seed).beta(hits + 1, total - hits + 1, size=resamples)


def _scope(validation: pd.DataFrame, group: str) -> pd.Series:
    own = validation[validation["name_group"] == group]
    if len(own) and own.iloc[0]["n_human_refusal"] >= MIN_PER_CLASS and own.iloc[0]["n_human_other"] >= MIN_PER_CLASS:
        return own.iloc[0]
    return validation[validation["name_group"] == "all"].iloc[0]


def warning(validation: pd.Series, model_key: str, model_version: str) -> str:
    """Why these error rates may not hold for the audited outputs ('' when nothing is known against them)."""
    if model_version == "recorded-" + str(validation["dataset_sha256"])[:12]:
        return "in-sample: the judge was validated on these very outputs, so its error rates are optimistic"
    outputs = validation.get("outputs_model")
    if outputs is None or pd.isna(outputs) or outputs == "":
        return "the validation does not say whose outputs it labelled: its error rates may not hold for this model"
    if outputs != model_key:
        return f"error rates measured on outputs of {outputs}, not of {model_key}: they may not hold here"
    return ""


def corrected_rates(cell: Cell, keys: dict, validations: pd.DataFrame, reference: str, seed: int) -> pd.DataFrame:
    """One row per (validation of the cell's judge, group) with raw and corrected any-refusal rates (as many
    judge draws as the cell has audit draws)."""
    rows = []
    K, n = cell.measure("any_refusal"), cell.n
    kg, ng = cell.group_draws("any_refusal", by_name=False)
    resamples = len(kg)
    for vid, val in validations[validations["judge_id"] == keys["judge_id"]].groupby("validation_id", sort=True):
        corrected, raw = {}, {}
        for group in cell.group_list:
            v, mine = _scope(val, group), cell.groups == group
            tag = hashlib.sha256(repr((seed, vid, v["name_group"])).encode()).digest()
            base = int.from_bytes(tag[:8], "big")
            se = beta_draws(v["true_positives"], v["n_human_refusal"], resamples, base)
            sp = beta_draws(v["true_negatives"], v["n_human_other"], resamples, base + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                q_draws = kg[:, cell.group_list.index(group)] / ng[:, cell.group_list.index(group)]
            q = K[:, mine].sum() / n[:, mine].sum()
            raw[group] = (q, q_draws)
            why = cannot_correct(q, v["sensitivity"], v["specificity"])
            point = np.nan if why else float(rogan_gladen(q, v["sensitivity"], v["specificity"]))
            corrected[group] = (point, rogan_gladen(q_draws, se, sp, clip=False), why)
            rows.append({**keys, "name_group": group, "n": int(n[:, mine].sum()), "raw_rate": q, "validation_id": vid,
                         "validation_scope": v["name_group"], "sensitivity": v["sensitivity"],
                         "specificity": v["specificity"], "corrected_rate": point,
                         "warning": warning(v, keys["model_key"], keys["model_version"])})
        _refuse_collapsed(corrected)
        for row in rows[-len(corrected):]:
            _intervals(row, raw, corrected, reference)
    return pd.DataFrame(rows)


def _refuse_collapsed(corrected: dict) -> None:
    """Intervals come from the unclipped draws, clipped afterwards: clipping each draw first piles them on a
    bound and can give an interval of width 0 ([0, 0]), a certainty the data do not give. A group whose
    interval would still have no width, or whose rate cannot be corrected at all, gets no corrected values."""
    for group, (point, draws, why) in corrected.items():
        low, high = np.clip(percentile_interval(draws, np.array(point)), 0.0, 1.0)
        if not why and not high > low:
            why = "cannot correct: every resample of the correction falls outside [0, 1]; the raw rate stands"
        if why:
            corrected[group] = (np.nan, np.full_like(draws, np.nan), why)


def _intervals(row: dict, raw: dict, corrected: dict, reference: str) -> None:
    group = row["name_group"]
    point, draws, why = corrected[group]
    low, high = np.clip(percentile_interval(draws, np.array(point)), 0.0, 1.0)
    raw_low, raw_high = percentile_interval(raw[group][1], np.array(raw[group][0]))
    row.update(corrected_rate=point, ci_low=float(low), ci_high=float(high), raw_ci_low=float(raw_low),
               raw_ci_high=float(raw_high), valid_draws=int(np.isfinite(draws).sum()), reference_group=reference,
               note=why)
    if reference in corrected:
        ref_point, ref_draws, _ = corrected[reference]
        diff_low, diff_high = percentile_interval(draws - ref_draws, np.array(point - ref_point))
        row.update(raw_diff=raw[group][0] - raw[reference][0], corrected_diff=point - ref_point,
                   corrected_diff_ci_low=float(diff_low), corrected_diff_ci_high=float(diff_high))
