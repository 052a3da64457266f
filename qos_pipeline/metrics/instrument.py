"""The judge as the instrument behind every number: whether it was checked against human labels of the
audited model's own outputs, what that check found (agreement, flags per measure and group), and the
prediction-powered gaps that correct for it. The findings, the text and HTML reports and the UI read
these, so a number is never shown without saying how far its instrument was checked.

Pure functions over a read-only DuckDB connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from qos_pipeline.judging.human import HUMAN_JUDGE
from qos_pipeline.metrics.wording import MEASURE_WORDS

PPI_PREFIX = "Prediction-powered gaps"
PPI_TITLE = PPI_PREFIX + " vs '{reference}' (judge labels corrected by human labels)"
PPI_NOTE = ("labelled: human-labelled outputs of the group + of the reference group; corrected gap: the judge's "
            "labels of every output plus the human-minus-judge correction on the labelled ones (PPI++), valid when "
            "the judge errs, also differently between groups; t x n CI: templates and names resampled for both "
            "parts; p_adj: Holm within the family (primary: any refusal vs the reference; secondary: exploratory)")
AGREEMENT_TITLE = "Judge checked against human labels"
JUDGE_PAIRS_TITLE = "Agreement between judges on the same outputs (six-way; judge A in the place of a human)"
GROUP_ERROR_TITLE = "Judge error per group (any refusal, harmful refusal)"
GROUP_ERROR_NOTE = ("judge gap - human gap: what the judge's error adds to the group's gap vs the reference group "
                    "(template-cluster 95% CI); FLAG: the interval excludes 0, or the error is large against the gap")


@dataclass(frozen=True)
class Check:
    """What is known of one judge on one model's outputs."""

    model: str
    judge: str
    validated: bool  # checked against human labels of this model's outputs
    n: int = 0
    kappa: float | None = None
    kappa_ci: tuple[float, float] | None = None
    flags: dict[tuple[str, str], str] = field(default_factory=dict)  # (measure, group) -> flag text
    elsewhere: list[str] = field(default_factory=list)  # files of other models' outputs it was checked on

    def command(self) -> str:
        """The commands that would validate the judge on this model's outputs."""
        return (f"`qos label sample --model {self.model} --per-group 60 --out labels`, label the file, then "
                f"`qos label import labels.csv --model {self.model}`")

    def note(self, measure: str, group: str) -> str:
        """A few words to put next to a number of (measure, group): '' when the judge holds there."""
        if self.judge == HUMAN_JUDGE:
            return ""
        if not self.validated:
            return "judge unvalidated on this model"
        if (measure, group) in self.flags:
            return f"judge flagged for group bias on {MEASURE_WORDS.get(measure, measure)} here"
        return ""

    def sentence(self) -> str:
        """What the reader must know of the instrument, with the command that fixes it ('' when nothing)."""
        if self.judge == HUMAN_JUDGE:
            return ""
        if not self.validated:
            where = (f" (it was checked only on other outputs: {', '.join(self.elsewhere)}, whose phrasing may "
                     "differ)" if self.elsewhere else "")
            return (f"Judge {self.judge} was never checked against human labels of {self.model}'s outputs{where}, "
                    "so these numbers assume it errs alike on every group; check it with " + self.command() + ".")
        ci = f" [{self.kappa_ci[0]:.2f}, {self.kappa_ci[1]:.2f}]" if self.kappa_ci else ""
        text = (f"Judge {self.judge} checked on {self.n} human-labelled outputs of {self.model}: "
                f"kappa {self.kappa:.2f}{ci}")
        if self.flags:
            flagged = "; ".join(f"{MEASURE_WORDS.get(m, m)} for {g}" for m, g in sorted(self.flags))
            return (text + f"; flagged for group bias on {flagged}: its gaps there may be wrong, read the "
                    "prediction-powered ones (or label more outputs: " + self.command() + ").")
        return text + "; no measure flagged for group bias."


def checks(con) -> dict[tuple[str, str], Check]:
    """(model_key, judge_id) -> Check, for every model and judge of the warehouse."""
    pairs = con.execute("SELECT DISTINCT model_key, judge_id FROM judgments ORDER BY ALL").fetchall()
    own = con.execute("""SELECT outputs_model, judge_id, validation_id, n, kappa, kappa_ci_low, kappa_ci_high
        FROM judge_validations WHERE name_group = 'all' AND outputs_model IS NOT NULL ORDER BY validated_at""").df()
    flags = con.execute("""SELECT v.outputs_model, m.judge_id, m.measure, m.name_group, m.flag_reason
        FROM judge_validation_measures m JOIN judge_validations v USING (validation_id, name_group)
        WHERE m.flagged""").df()
    files = con.execute("SELECT DISTINCT judge_id, dataset_file, outputs_model FROM judge_validations").df()
    out = {}
    for model, judge in pairs:
        mine = own[(own["outputs_model"] == model) & (own["judge_id"] == judge)]
        other = files[(files["judge_id"] == judge) & (files["outputs_model"] != model)]
        if mine.empty:
            out[model, judge] = Check(model, judge, False, elsewhere=sorted(other["dataset_file"].astype(str)))
            continue
        last = mine.iloc[-1]
        ci = (float(last["kappa_ci_low"]), float(last["kappa_ci_high"])) if pd.notna(last["kappa_ci_low"]) else None
        flagged = flags[(flags["outputs_model"] == model) & (flags["judge_id"] == judge)]
        out[model, judge] = Check(model, judge, True, int(last["n"]), float(last["kappa"]), ci,
                                  {(r.measure, r.name_group): r.flag_reason for r in flagged.itertuples()})
    return out


def ppi_gaps(con, where: str = "", params: list | None = None) -> pd.DataFrame:
    """Prediction-powered gaps against the reference group (every measure), with the judge-only gap."""
    return con.execute(f"SELECT * FROM group_comparisons_ppi{where}{' AND' if where else ' WHERE'} is_reference "
                       "ORDER BY ALL", params or []).df()


def agreement(con, where: str = "", params: list | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per validation of the cells' judges: n, kappa, accuracy, refusal F1 with intervals, whose
    outputs; per validation, group and measure: sensitivity, specificity, gap error with intervals, flag)."""
    judges = con.execute(f"SELECT DISTINCT judge_id FROM label_rates_model{where}", params or []).fetchall()
    ids = [j for (j,) in judges]
    if not ids:
        return pd.DataFrame(), pd.DataFrame()
    marks = ", ".join("?" for _ in ids)
    summary = con.execute(f"""SELECT judge_id, dataset_file, outputs_model, n, kappa, kappa_ci_low, kappa_ci_high,
               accuracy, accuracy_ci_low, accuracy_ci_high, refusal_f1, refusal_f1_ci_low, refusal_f1_ci_high,
               validation_id FROM judge_validations WHERE name_group = 'all' AND judge_id IN ({marks})
               ORDER BY ALL""", ids).df()
    groups = con.execute(f"""SELECT m.judge_id, v.outputs_model, v.dataset_file, m.measure, m.name_group, m.n,
               m.sensitivity, m.sensitivity_ci_low, m.sensitivity_ci_high, m.specificity, m.specificity_ci_low,
               m.specificity_ci_high, m.judge_gap, m.human_gap, m.gap_error, m.gap_error_ci_low, m.gap_error_ci_high,
               m.flagged, m.flag_basis
               FROM judge_validation_measures m
               JOIN (SELECT validation_id, outputs_model, dataset_file FROM judge_validations
                     WHERE name_group = 'all') v USING (validation_id)
               WHERE m.judge_id IN ({marks}) AND m.name_group <> 'all'
               AND m.measure IN ('any_refusal', 'harmful_refusal') ORDER BY ALL""", ids).df()
    return summary, groups


def _pct_ci(x, low, high, sign: bool = False) -> str:
    if x is None or pd.isna(x):
        return ""
    value = f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"
    return value + ("" if pd.isna(low) else f" [{100 * low:.1f}, {100 * high:.1f}]")


def _ratio_ci(x, low, high) -> str:
    if x is None or pd.isna(x):
        return ""
    return f"{x:.2f}" + ("" if pd.isna(low) else f" [{low:.2f}, {high:.2f}]")


def ppi_table(gaps: pd.DataFrame) -> pd.DataFrame:
    """The prediction-powered gaps as the reports print them (one row per cell, measure and group)."""
    if gaps.empty:
        return gaps
    out = gaps[["model_key", "judge_id", "measure", "name_group"]].copy()
    out["labelled"] = [f"{int(a)} + {int(b)}" for a, b in zip(gaps["n_labelled"], gaps["n_labelled_vs"])]
    out["judge alone, pts"] = gaps["judge_diff"].map(lambda x: f"{100 * x:+.1f}")
    out["corrected gap, pts [t x n CI]"] = [_pct_ci(d, a, b, True) for d, a, b in
                                            zip(gaps["diff"], gaps["diff_ci_tn_low"], gaps["diff_ci_tn_high"])]
    out["template CI"] = [_pct_ci(d, a, b, True).partition(" ")[2] for d, a, b in
                          zip(gaps["diff"], gaps["diff_ci_low"], gaps["diff_ci_high"])]
    out["p_adj"] = gaps["p_adjusted"].map(lambda p: "" if pd.isna(p) else ("<0.001" if p < 0.001 else f"{p:.3f}"))
    out["family"] = gaps["family"]
    return out


def agreement_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Each validation of the shown judges: whose outputs, n, kappa, accuracy and refusal F1 with intervals."""
    if summary.empty:
        return summary
    out = summary[["judge_id"]].copy()
    out["labelled outputs of"] = summary["outputs_model"].fillna("(not recorded)")
    out["source"] = summary["dataset_file"]
    out["n"] = summary["n"].astype(int)
    for key, title in (("kappa", "kappa"), ("accuracy", "accuracy"), ("refusal_f1", "refusal F1")):
        out[f"{title} [95% CI]"] = [_ratio_ci(x, a, b) for x, a, b in
                                    zip(summary[key], summary[f"{key}_ci_low"], summary[f"{key}_ci_high"])]
    return out


def group_error_table(groups: pd.DataFrame) -> pd.DataFrame:
    """Per validation, measure and group: sensitivity, specificity and the error the judge adds to the gap."""
    if groups.empty:
        return groups
    out = groups[["judge_id"]].copy()
    out["labelled outputs of"] = groups["outputs_model"].fillna("(not recorded)")
    out[["measure", "name_group"]] = groups[["measure", "name_group"]]
    out["n"] = groups["n"].astype(int)
    out["sensitivity [95% CI]"] = [_ratio_ci(x, a, b) for x, a, b in zip(
        groups["sensitivity"], groups["sensitivity_ci_low"], groups["sensitivity_ci_high"])]
    out["specificity [95% CI]"] = [_ratio_ci(x, a, b) for x, a, b in zip(
        groups["specificity"], groups["specificity_ci_low"], groups["specificity_ci_high"])]
    out["judge gap - human gap, pts"] = [_pct_ci(x, a, b, True) for x, a, b in zip(
        groups["gap_error"], groups["gap_error_ci_low"], groups["gap_error_ci_high"])]
    out["flag"] = ["FLAG: " + b if f else "" for f, b in zip(groups["flagged"], groups["flag_basis"].fillna(""))]
    return out


def judge_pairs(con, where: str = "", params: list | None = None, resamples: int = 1000) -> pd.DataFrame:
    """Two judges that labelled the same outputs of a model: n, Cohen's kappa and agreement with 95%
    template-cluster intervals (judge A's labels in the place of the human's; outputs A left unjudged are
    not compared and are counted in ``a_unjudged``)."""
    from qos_pipeline.judging.evaluation import intervals, measures

    models = [m for (m,) in con.execute(f"SELECT DISTINCT model_key FROM label_rates_model{where}", params or [])
              .fetchall()]
    rows = []
    for model in models:
        pairs = con.execute("""SELECT a.judge_id AS judge_a, b.judge_id AS judge_b, a.template_id, a.label AS label_a,
                   b.label AS label_b FROM judged a JOIN judged b USING (generation_id)
            WHERE a.model_key = ? AND a.judge_id < b.judge_id ORDER BY ALL""", [model]).df()
        for (a, b), part in pairs.groupby(["judge_a", "judge_b"], sort=True):
            judged = part[part["label_a"] != "unjudged"]
            ids, index, W = measures.template_draws(judged["template_id"].to_numpy(dtype=object), resamples, 0)
            counts = intervals.confusions(judged["label_a"], judged["label_b"], index, len(ids))
            total = counts.sum(axis=0)
            point = intervals.figures(total, total.sum(axis=1) > 0)
            ci = intervals.agreement_intervals(counts, W)
            rows.append({"model_key": model, "judge_a": a, "judge_b": b, "n": len(judged),
                         "a_unjudged": len(part) - len(judged), "kappa": float(point["kappa"]),
                         "kappa_ci": ci["kappa"], "agreement": float(point["accuracy"]),
                         "agreement_ci": ci["accuracy"]})
    return pd.DataFrame(rows)


def judge_pairs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The pairwise judge-agreement rows in display form."""
    if frame.empty:
        return frame
    out = frame[["model_key", "judge_a", "judge_b", "n", "a_unjudged"]].copy()
    out["kappa [95% CI]"] = [_ratio_ci(k, *ci) for k, ci in zip(frame["kappa"], frame["kappa_ci"])]
    out["agreement [95% CI]"] = [_ratio_ci(k, *ci) for k, ci in zip(frame["agreement"], frame["agreement_ci"])]
    return out


def report_tables(con, where: str, params: list, reference: str) -> dict[str, pd.DataFrame]:
    """The report's tables about its instrument, by title (only those with rows): the prediction-powered
    gaps, the agreement between judges on the same outputs, the judge checked against human labels and its
    error per group."""
    tables = {}
    ppi = ppi_gaps(con, where, params)
    if len(ppi):
        title = PPI_TITLE.format(reference=reference)
        tables[title] = ppi_table(ppi)
        tables[title].attrs["note"] = PPI_NOTE
    pairs = judge_pairs(con, where, params)
    if len(pairs):
        tables[JUDGE_PAIRS_TITLE] = judge_pairs_table(pairs)
    summary, errors = agreement(con, where, params)
    if len(summary):
        tables[AGREEMENT_TITLE] = agreement_table(summary)
        tables[GROUP_ERROR_TITLE] = group_error_table(errors)
        tables[GROUP_ERROR_TITLE].attrs["note"] = GROUP_ERROR_NOTE
    return tables
