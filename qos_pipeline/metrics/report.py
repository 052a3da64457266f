"""`qos report`: the findings, then the main tables of the warehouse as text (percentages to one decimal,
95% intervals in brackets: rates with the template-cluster bootstrap, gaps with the templates x names one
unless a column says otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qos_pipeline.metrics import instrument
from qos_pipeline.metrics.findings import finding_lines
from qos_pipeline.metrics.model_findings import model_where, pair_label
from qos_pipeline.metrics.publish import connect_readonly
from qos_pipeline.metrics.stats.multiplicity import PRIMARY
from qos_pipeline.metrics.wording import (
    ADJUST_WORDS,
    MEASURES,
    cell_where,
    fmt_ci,
    fmt_floor,
    fmt_p,
    missing,
    reference_group,
)
from qos_pipeline.tables import CELL_KEYS  # all key columns: two versions (formats, judges) never share a row
from qos_pipeline.taxonomy import ALL_LABELS

FINDINGS = "Findings"



def _pct(x: float) -> str:
    return "" if pd.isna(x) else f"{100 * x:.1f}%"


_ci = fmt_ci


def _rate_ci(rate: float, low: float, high: float) -> str:
    """``14.9% [11.2, 19.0]``; the rate alone when there is no interval."""
    return f"{_pct(rate)} {_ci(low, high)}".strip()


def _gap_ci(diff: float, low: float, high: float) -> str:
    return "" if pd.isna(diff) else f"{100 * diff:+.1f} {_ci(low, high)}".strip()


def _one(values: pd.Series) -> float:
    """The single value of a report cell; two would mean the index misses a key column of the table."""
    if len(values) != 1:
        raise ValueError(f"report cell holds {len(values)} values; its index misses a key column")
    return values.iloc[0]


def _label_pivot(df: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    wide = df.pivot_table(index=index + ["n"], columns="label", values="rate", aggfunc=_one)
    wide = wide[[c for c in ALL_LABELS if c in wide.columns]].map(_pct)
    return _flat(wide.reset_index())


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """A pivot's result without the name of its column axis (HTML would print it as an extra header)."""
    df.columns.name = None
    return df


def _label_order(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(_o=df["label"].map(ALL_LABELS.index)).sort_values(CELL_KEYS + ["_o"]).drop(columns="_o")


def _model_intervals(overall: pd.DataFrame) -> pd.DataFrame:
    overall = _label_order(overall)
    out = overall[CELL_KEYS + ["label", "count", "rate"]].copy()
    out["share"] = overall["rate"].map(_pct)
    out["template CI"] = [_ci(a, b) for a, b in zip(overall["ci_low"], overall["ci_high"])]
    out["template x name CI"] = [_ci(a, b) for a, b in zip(overall["ci_tn_low"], overall["ci_tn_high"])]
    out["Wilson CI"] = [_ci(a, b) for a, b in zip(overall["wilson_low"], overall["wilson_high"])]
    out["count"] = out["count"].astype(int)
    return out.drop(columns="rate")


def _group_intervals(by_group: pd.DataFrame) -> pd.DataFrame:
    rows = by_group[by_group["label"].isin(["refusal", "harmful refusal", "unjudged"])]
    wide = rows.assign(text=[_rate_ci(r, a, b) for r, a, b in zip(rows["rate"], rows["ci_low"], rows["ci_high"])])
    out = wide.pivot_table(index=CELL_KEYS + ["name_group", "n"], columns="label", values="text", aggfunc=_one)
    counts = rows[rows["label"] == "unjudged"].set_index(CELL_KEYS + ["name_group", "n"])["count"].astype(int)
    out["unjudged"] = counts.reindex(out.index).to_numpy()
    return _flat(out[["unjudged", "refusal", "harmful refusal"]].reset_index())


def _ratio(ratio: float, low: float, high: float, zero: bool) -> str:
    """``4.29 [2.10, 9.80]`` from the log-ratio interval; * marks the +0.5 correction of a zero count."""
    if pd.isna(ratio):
        return ""
    ci = "" if missing(low) else f" [{np.exp(low):.2f}, {np.exp(high):.2f}]"
    return f"{ratio:.2f}" + ("*" if zero else "") + ci


def _templates_used(shared: int, templates: int, dropped: int) -> str:
    return f"{shared}" if shared == templates else f"{shared} of {templates} ({dropped} out)"


def _comparisons(comp: pd.DataFrame) -> pd.DataFrame:
    """Each group vs the reference group, primary family first: rates, gap with its headline (templates x
    names) and names-fixed intervals, ratio, p and adjusted p, the permutation floor, templates compared."""
    rows = comp[comp["is_reference"]].copy()
    rows["_o"] = [(f != PRIMARY, MEASURES.index(m)) for f, m in zip(rows["family"], rows["measure"])]
    rows = rows.sort_values(CELL_KEYS + ["_o", "diff"], ascending=[True] * (len(CELL_KEYS) + 1) + [False])
    out = rows[CELL_KEYS + ["measure", "family", "name_group"]].copy()
    out["n"] = rows["n"].astype(int)
    out["rate"], out["ref"] = rows["rate"].map(_pct), rows["rate_vs"].map(_pct)
    out["gap, pts [95% CI]"] = [_gap_ci(d, a, b) for d, a, b in zip(rows["diff"], rows["diff_ci_tn_low"],
                                                                    rows["diff_ci_tn_high"])]
    out["names fixed"] = [_ci(a, b) for a, b in zip(rows["diff_ci_low"], rows["diff_ci_high"])]
    out["ratio [95% CI]"] = [_ratio(*r) for r in zip(rows["ratio"], rows["log_ratio_ci_tn_low"],
                                                       rows["log_ratio_ci_tn_high"], rows["ratio_zero_count"])]
    out["p"], out["p_adj"] = rows["p_value"].map(fmt_p), rows["p_adjusted"].map(fmt_p)
    out["p floor"] = rows["p_floor"].map(lambda x: "" if missing(x) else fmt_floor(x))
    out["templates"] = [_templates_used(*r) for r in zip(rows["shared_templates"], rows["templates"],
                                                         rows["n_dropped"] + rows["n_dropped_vs"])]
    return out


def model_comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """Pairs of models with the same prompts: each gap, and gap A minus gap B with its intervals."""
    if df.empty:
        return df
    out = pd.DataFrame({"model A": [pair_label(r, "a", "b") for _, r in df.iterrows()],
                        "model B": [pair_label(r, "b", "a") for _, r in df.iterrows()]})
    for column in ("judge_id", "measure", "family", "name_group"):
        out[column] = df[column].to_numpy()
    out["gap A"] = df["gap_a"].map(lambda x: f"{100 * x:+.1f}").to_numpy()
    out["gap B"] = df["gap_b"].map(lambda x: f"{100 * x:+.1f}").to_numpy()
    out["A - B, pts [95% CI]"] = [_gap_ci(d, a, b) for d, a, b in zip(df["diff_of_gaps"], df["ci_tn_low"],
                                                                      df["ci_tn_high"])]
    out["names fixed"] = [_ci(a, b) for a, b in zip(df["ci_low"], df["ci_high"])]
    out["p_adj"] = df["p_adjusted"].map(fmt_p).to_numpy()
    return out


def _mixed(effects: pd.DataFrame, comp: pd.DataFrame) -> pd.DataFrame:
    """The mixed model's group effects beside the design-based gaps of the same comparisons."""
    if effects.empty:
        return effects
    keys = CELL_KEYS + ["measure", "name_group", "vs_group"]
    both = effects.merge(comp, on=keys, how="left", suffixes=("", "_design"))
    out = both[CELL_KEYS + ["measure", "name_group"]].copy()
    out["design gap [95% CI]"] = [_gap_ci(d, a, b) for d, a, b in zip(both["diff"], both["diff_ci_tn_low"],
                                                                      both["diff_ci_tn_high"])]
    out["p_adj"] = both["p_adjusted"].map(fmt_p)
    out["model odds ratio [95% CI]"] = [_ratio(r, a, b, False) for r, a, b in zip(
        both["odds_ratio"], both["log_odds_ci_low"], both["log_odds_ci_high"])]
    out["SD template / name"] = [f"{t:.2f} / {n:.2f}" for t, n in zip(both["sd_template"], both["sd_name"])]
    out["agrees"] = both["design_agrees"].map({True: "yes", False: "no"}).fillna("")
    out["note"] = both["note"].fillna("")
    return out


def _old_disparities(disp: pd.DataFrame) -> pd.DataFrame:
    """Without statistics (no group_comparisons rows): the point estimates of ``disparities``."""
    cols = CELL_KEYS + ["name_group", "n", "refusal_rate", "refusal_diff", "refusal_ratio",
                    "harmful_refusal_rate", "any_refusal_rate", "any_refusal_diff", "any_refusal_ratio"]
    disp = disp[cols].copy()
    for c in ("refusal_rate", "refusal_diff", "harmful_refusal_rate", "any_refusal_rate", "any_refusal_diff"):
        disp[c] = disp[c].map(_pct)
    for c in ("refusal_ratio", "any_refusal_ratio"):
        disp[c] = disp[c].map(lambda x: "" if pd.isna(x) else f"{x:.2f}")
    return disp


def _names(names: pd.DataFrame, sens: pd.DataFrame) -> pd.DataFrame:
    refusals = names[names["label"].isin(["refusal", "harmful refusal"])].pivot_table(
        index=CELL_KEYS + ["name_group", "name", "n"], columns="label", values="rate", aggfunc=_one).reset_index()
    refusals["_any"] = refusals["refusal"] + refusals["harmful refusal"]
    refusals = refusals.sort_values(CELL_KEYS + ["_any"], ascending=[True] * len(CELL_KEYS) + [False])
    keys = CELL_KEYS + ["name_group", "name"]
    anyr = sens[sens["measure"] == "any_refusal"].set_index(keys) if len(sens) else pd.DataFrame()
    refusals["any refusal [95% CI]"] = [
        _rate_ci(r, *(anyr.loc[k, ["ci_low", "ci_high"]] if k in anyr.index else (None, None)))
        for r, k in zip(refusals["_any"], refusals[keys].itertuples(index=False, name=None))]
    for c in ("refusal", "harmful refusal"):
        refusals[c] = refusals[c].map(_pct)
    return _flat(refusals.drop(columns="_any"))


def _sensitivity(sens: pd.DataFrame) -> pd.DataFrame:
    """Per group: the name whose removal moves the any-refusal gap most (leave-one-name-out)."""
    if sens.empty:
        return sens
    rows = sens[(sens["measure"] == "any_refusal") & sens["most_extreme"]].sort_values(CELL_KEYS + ["name_group"])
    out = rows[CELL_KEYS + ["name_group", "name"]].copy()
    out["its rate"] = rows["rate"].map(_pct)
    out["gap, pts"] = rows["gap_vs_reference"].map(lambda x: f"{100 * x:+.1f}")
    out["gap without it"] = rows["gap_without_name"].map(lambda x: f"{100 * x:+.1f}")
    out["shift"] = rows["shift"].map(lambda x: f"{100 * x:+.1f}")
    return out


MODELS = "Model comparisons (same prompts): gap of model A minus gap of model B"
MIXED = "Mixed-model cross-check of the primary gaps (logistic, random template and name effects)"


def _comparison_note(boot: str, adjust: str) -> str:
    return (f"gap in points; {boot.replace('template-cluster bootstrap', 'bootstrap')}; gap CI and ratio CI resample "
            "templates x names (a claim about the group); names fixed: templates only; p: permutation test of group "
            "labels between names on the templates both groups share (it tests that names are exchangeable between "
            f"the groups, so very unequal name spread can matter as well as the means); p_adj: {adjust} within "
            "the family (primary: each group vs the reference on the primary measure; secondary: exploratory); "
            "p floor: the smallest p these numbers of names allow; ratio*: a zero count, +0.5 on every count")


def build_report(db: Path, model: str | None = None, judge: str | None = None) -> dict[str, pd.DataFrame | str]:
    """The report's parts, in order: the findings (text), then the tables (formatted strings)."""
    where, params = cell_where(model, judge)
    with connect_readonly(db) as con:
        q = lambda sql, w=where, p=params: con.execute(sql.format(where=w), p).df()  # noqa: E731
        overall = q("SELECT * FROM label_rates_model{where}")
        by_group = q("SELECT * FROM label_rates_group{where}")
        disp = q("SELECT * FROM disparities{where}")
        comp = q("SELECT * FROM group_comparisons{where}")
        names = q("SELECT * FROM label_rates_name{where}")
        sens = q("SELECT * FROM name_sensitivity{where}")
        effects = q("SELECT * FROM group_effects_mixed{where} ORDER BY ALL")
        pairs = q("SELECT * FROM model_comparisons{where} ORDER BY ALL", *model_where(model, judge))
        reference = reference_group(con)
        lines = finding_lines(con, model, judge) if len(overall) else []
        instrument_tables = instrument.report_tables(con, where, params, reference)
    if overall.empty:
        raise ValueError(f"no judged generations in {db}" + (f" for {where.strip()} {params}" if params else "")
                         + "; run `qos run` or `qos ingest` first")
    resamples, seed = int(overall["boot_resamples"].max()), int(overall["boot_seed"].max())
    boot = (f"95% intervals: template-cluster bootstrap, {resamples} resamples, seed {seed}" if resamples
            else "statistics off: no intervals (0 bootstrap resamples)")
    adjust = ADJUST_WORDS.get(comp["p_adjust_method"].iloc[0], "") if len(comp) else ""
    comparisons = _comparisons(comp) if len(comp) else _old_disparities(disp)
    comparisons.attrs["note"] = _comparison_note(boot, adjust) if len(comp) else boot
    comparisons.attrs["wrap"] = True  # many columns: in blocks that fit the width
    frames: dict[str, pd.DataFrame] = {
        "Label shares per model": _label_pivot(overall, CELL_KEYS),
        "Label shares per model, 95% intervals": _model_intervals(overall),
        "Label shares per model x group": _label_pivot(by_group, CELL_KEYS + ["name_group"]),
        "Refusal rates per group, 95% intervals": _group_intervals(by_group),
        f"Disparities vs reference group '{reference}'": comparisons,
        MIXED: _mixed(effects, comp),
        MODELS: model_comparison_table(pairs),
        "Refusal rates per name": _names(names, sens),
        "Name sensitivity: the name whose removal moves its group's any-refusal gap most": _sensitivity(sens),
    }
    ppi = {t: df for t, df in instrument_tables.items() if t.startswith(instrument.PPI_PREFIX)}
    frames["Label shares per model, 95% intervals"].attrs["note"] = (
        f"{boot}; template x name: resampling both; Wilson: naive, as if every output were independent")
    frames["Refusal rates per group, 95% intervals"].attrs["note"] = boot
    frames["Refusal rates per name"].attrs["note"] = boot
    frames[MIXED].attrs["wrap"] = frames[MODELS].attrs["wrap"] = True
    frames[MIXED].attrs["note"] = ("odds ratio vs the reference group, 95% t interval (names - groups df); it "
                                   "assumes one name spread for every group and works on the log-odds scale, "
                                   "so it can disagree with the design-based gap (agrees: both intervals say "
                                   "the same about 0)")
    frames[MODELS].attrs["note"] = ("A - B = gap of A minus gap of B (positive: the gap is larger for A); CI "
                                    "resamples templates x names, paired; p: templates flipped between the models")
    others = {t: df for t, df in instrument_tables.items() if t not in ppi}
    # the findings first, then the prediction-powered gaps they lead with, the tables, the other judge tables
    return {FINDINGS: "\n".join(lines), **ppi, **frames, **others}
