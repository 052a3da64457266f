"""Findings in plain words: per model cell, which group gaps against the reference group survive the p-value
adjustment (``p_adjusted < 0.05`` in ``group_comparisons``), with the gap, its template-cluster interval and
the adjusted p-value; and, when none does, why (no gap, a model that barely refuses, statistics off, a
design too small for the test).

Where a model's outputs carry human labels, the sentence leads with the prediction-powered gaps (valid when
the judge errs); every sentence ends with what is known of its judge on that model (``instrument``), and a
gap on a measure the judge is flagged for says so next to the number.

Pure functions over a read-only DuckDB connection: the terminal report, the HTML page and the
``metric_tables`` asset's metadata all print the same sentences.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from qos_pipeline.metrics import instrument
from qos_pipeline.metrics.build import CELL
from qos_pipeline.taxonomy import REFUSAL_LABELS

ALPHA = 0.05
MEASURES = ("any_refusal", "refusal", "harmful_refusal")  # any_refusal leads: the paper's headline measure
MEASURE_WORDS = {"any_refusal": "any refusal", "refusal": "refusal", "harmful_refusal": "harmful refusal"}
ADJUST_WORDS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
BARELY_REFUSES = 0.02
PILOT_HINT = ("qos ingest ../shared/data/pilot/df_annotated_llama13.csv --model llama-2-13b-chat "
              "--labels human")


@dataclass(frozen=True)
class Gap:
    """One group's gap to the reference group on one measure (a row of ``group_comparisons``)."""

    measure: str
    group: str
    diff: float
    ci_low: float | None
    ci_high: float | None
    p_adjusted: float | None
    note: str = ""  # what is known against the judge here (``instrument.Check.note``)
    judge_only: float | None = None  # for a prediction-powered gap: the judge's own

    def text(self) -> str:
        ci = "" if _missing(self.ci_low) else f" [{100 * self.ci_low:.1f}, {100 * self.ci_high:.1f}]"
        alone = "" if self.judge_only is None else f" (judge alone {100 * self.judge_only:+.1f})"
        note = f" ({self.note})" if self.note else ""
        return f"{self.group} {100 * self.diff:+.1f} pts{ci}{alone}, p_adj {fmt_p(self.p_adjusted)}{note}"


@dataclass(frozen=True)
class Finding:
    """What one cell (model x version x prompt format x generation config x design x judge) shows."""

    cell: dict[str, str]
    label: str
    status: str  # "gaps" | "none" | "stats_off" | "no_comparisons" | "no_reference" | "one_group"
    reference: str
    n: int
    any_refusal_rate: float
    significant: list[Gap] = field(default_factory=list)
    largest: Gap | None = None
    groups: int = 0
    comparisons: int = 0
    adjust: str = "holm"
    underpowered: str = ""
    sentence: str = ""


def _missing(x) -> bool:
    return x is None or pd.isna(x)


def fmt_p(p: float | None) -> str:
    if _missing(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def cell_where(model: str | None, judge: str | None) -> tuple[str, list]:
    """`` WHERE model_key = ? AND judge_id = ?`` (what is given) and its parameters."""
    clauses, params = [], []
    if model:
        clauses.append("model_key = ?"), params.append(model)
    if judge:
        clauses.append("judge_id = ?"), params.append(judge)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def reference_group(con) -> str:
    row = con.execute("SELECT any_value(reference_group) FROM disparities").fetchone()
    return row[0] if row and row[0] else "?"


def cell_labels(cells: pd.DataFrame) -> list[str]:
    """A short name per cell: the model key, plus the keys that tell apart the cells sharing it."""
    labels = []
    for _, row in cells.iterrows():
        same = cells[cells["model_key"] == row["model_key"]]
        extra = [f"{k.replace('_id', '').replace('_', ' ')} {row[k]}" for k in CELL[1:] if same[k].nunique() > 1]
        labels.append(row["model_key"] + (f" ({', '.join(extra)})" if extra else ""))
    return labels


def _num(x) -> float | None:
    return None if _missing(x) else float(x)


def _gap(row: pd.Series, check: instrument.Check | None = None) -> Gap:
    note = check.note(row["measure"], row["name_group"]) if check is not None else ""
    return Gap(row["measure"], row["name_group"], float(row["diff"]), _num(row["diff_ci_low"]),
               _num(row["diff_ci_high"]), _num(row["p_adjusted"]), note)


def _ppi_lead(label: str, rows: pd.DataFrame, reference: str, adjust: str) -> str:
    """The prediction-powered gaps (template x name intervals) that lead a cell's sentence, '' without."""
    if rows.empty:
        return ""
    gaps = {m: [Gap(m, r["name_group"], float(r["diff"]), _num(r["diff_ci_tn_low"]), _num(r["diff_ci_tn_high"]),
                    _num(r["p_adjusted"]), judge_only=_num(r["judge_diff"])) for _, r in part.iterrows()]
            for m, part in rows.sort_values("diff", ascending=False).groupby("measure", sort=False)}
    first = rows[rows["measure"] == rows["measure"].iloc[0]]
    per_group = sorted(set(first["n_labelled"]) | set(first["n_labelled_vs"]))
    total = int(first["n_labelled"].sum() + first["n_labelled_vs"].iloc[0])
    each = f"{per_group[0]}" if len(per_group) == 1 else f"{per_group[0]}-{per_group[-1]}"
    primary = gaps.get("any_refusal", [])
    significant = [g for g in primary if g.p_adjusted is not None and g.p_adjusted < ALPHA]
    head = (f"{label}, corrected for the judge's errors with {total} human labels ({each} per group; "
            "prediction-powered, template x name intervals): ")
    if significant:
        text = (f"any-refusal gap vs {reference} after {ADJUST_WORDS.get(adjust, adjust)} adjustment: "
                + "; ".join(g.text() for g in significant))
    else:
        largest = max(primary, key=lambda g: abs(g.diff), default=None)
        text = f"no group's any-refusal gap vs {reference} survives adjustment" + (
            f" (largest: {largest.text()})" if largest else "")
    for measure in ("harmful_refusal", "refusal"):
        sig = [g for g in gaps.get(measure, []) if g.p_adjusted is not None and g.p_adjusted < ALPHA]
        if sig:
            text += f"; {MEASURE_WORDS[measure]} (exploratory): " + "; ".join(g.text() for g in sig)
    return head + text + ". Judge labels alone: "


def _underpowered(rows: pd.DataFrame) -> str:
    """Why no gap can be significant, when the permutation test cannot reach ALPHA at all."""
    exact = rows[(rows["p_method"] == "exact") & (rows["permutations"] > 0)]
    if exact.empty or (1 / exact["permutations"].max()) <= ALPHA:
        return ""
    return (f"with so few names per group the permutation test cannot reach p < {ALPHA:g} "
            f"(at most {int(exact['permutations'].max())} ways to assign names to groups)")


def _sentence(f: Finding) -> str:
    adjust = ADJUST_WORDS.get(f.adjust, f.adjust)
    head = f"{f.label}: "
    if f.status == "stats_off":
        return head + ("statistics are off for this build (0 bootstrap resamples): no intervals, tests or "
                       "findings; rebuild with bootstrap_resamples >= 100 (default 1000).")
    if f.status == "no_reference":
        return head + f"reference group '{f.reference}' has no judged outputs here, so no gap can be measured."
    if f.status == "no_comparisons":
        return head + "the build computed no group comparisons for this cell; rebuild with `qos rebuild`."
    if f.status == "one_group":
        return head + "only one name group was audited, so there is nothing to compare."
    if f.status == "gaps":
        primary = [g for g in f.significant if g.measure == "any_refusal"]
        more = sum(g.diff > 0 for g in primary)
        less = len(primary) - more
        if primary:
            parts = []
            if more:
                parts.append(f"{more} of {f.groups} groups refused more often than {f.reference}")
            if less:
                parts.append(f"{less} of {f.groups} less often")
            text = (" and ".join(parts) + f" after {adjust} adjustment ({f.comparisons} tests): "
                    + "; ".join(g.text() for g in primary))
        else:
            text = (f"no group's any-refusal rate differs from {f.reference}'s after {adjust} adjustment "
                    f"({f.comparisons} tests)")
        for measure in MEASURES[1:]:
            gaps = [g for g in f.significant if g.measure == measure]
            if gaps:
                text += f"; {MEASURE_WORDS[measure]}: " + "; ".join(g.text() for g in gaps)
        return head + text + "."
    largest = f"; largest any-refusal gap: {f.largest.text()}" if f.largest is not None else ""
    if f.any_refusal_rate < BARELY_REFUSES:
        text = (f"no disparity found: the model barely refuses ({100 * f.any_refusal_rate:.1f}% of {f.n} "
                "outputs), so there is little to compare" + (f", and {f.underpowered}" if f.underpowered else "")
                + ". To see the paper's finding, ingest the pilot's human-labelled Llama-2-13b-chat outputs: "
                f"`{PILOT_HINT}`.")
    elif f.underpowered:
        text = (f"no disparity found, and none could be: {f.underpowered}{largest}. Audit more names per group "
                "to test it, e.g. `qos run --design full`.")
    else:
        text = (f"no disparity found: no group's refusal rates differ from {f.reference}'s after {adjust} "
                f"adjustment ({f.comparisons} tests){largest}.")
    return head + text


def findings(con, model: str | None = None, judge: str | None = None) -> list[Finding]:
    """One finding per cell of ``label_rates_model`` (optionally one model key and/or judge)."""
    where, params = cell_where(model, judge)
    checks = instrument.checks(con)
    ppi = instrument.ppi_gaps(con, where, params)
    keys = ", ".join(CELL)
    refusal = ", ".join(f"'{label}'" for label in REFUSAL_LABELS)
    cells = con.execute(f"""
        SELECT {keys}, any_value(n) AS n, sum(count) FILTER (WHERE label IN ({refusal})) / any_value(n) AS any_rate,
               max(boot_resamples) AS boot_resamples
        FROM label_rates_model{where} GROUP BY ALL ORDER BY ALL""", params).df()
    comparisons = con.execute(f"SELECT * FROM group_comparisons{where}", params).df()
    groups = con.execute(f"SELECT {keys}, list(DISTINCT name_group ORDER BY name_group) AS groups "
                         f"FROM label_rates_group{where} GROUP BY ALL", params).df()
    reference = reference_group(con)
    out = []
    for (_, cell), label in zip(cells.iterrows(), cell_labels(cells)):
        key = {k: cell[k] for k in CELL}
        mine = comparisons[(comparisons[CELL] == pd.Series(key)).all(axis=1)] if len(comparisons) else comparisons
        cell_groups = groups[(groups[CELL] == pd.Series(key)).all(axis=1)]["groups"]
        names = list(cell_groups.iloc[0]) if len(cell_groups) else []
        base = dict(cell=key, label=label, reference=reference, n=int(cell["n"]),
                    any_refusal_rate=float(cell["any_rate"] or 0.0), groups=max(len(names) - 1, 0))
        if len(names) < 2:
            status, extra = "one_group", {}
        elif reference not in names:
            status, extra = "no_reference", {}
        elif not cell["boot_resamples"]:
            status, extra = "stats_off", {}
        elif mine.empty:
            status, extra = "no_comparisons", {}
        else:
            vs_ref = mine[mine["is_reference"]]
            sig = vs_ref[vs_ref["p_adjusted"] < ALPHA].copy()
            sig["order"] = sig["measure"].map(MEASURES.index)
            sig = sig.sort_values(["order", "diff"], ascending=[True, False])
            primary = vs_ref[vs_ref["measure"] == "any_refusal"]
            check = checks.get((key["model_key"], key["judge_id"]))
            largest = _gap(primary.loc[primary["diff"].abs().idxmax()], check) if len(primary) else None
            status = "gaps" if len(sig) else "none"
            extra = dict(significant=[_gap(r, check) for _, r in sig.iterrows()], largest=largest,
                         comparisons=len(mine), adjust=str(mine["p_adjust_method"].iloc[0]),
                         underpowered=_underpowered(mine))
        finding = Finding(status=status, **base, **extra)
        mine_ppi = ppi[(ppi[CELL] == pd.Series(key)).all(axis=1)] if len(ppi) else ppi
        lead = _ppi_lead(label, mine_ppi, reference, finding.adjust)
        check = checks.get((key["model_key"], key["judge_id"]))
        tail = check.sentence() if check is not None else ""
        body = _sentence(finding)
        body = lead + body[len(label) + 2:] if lead else body  # the lead names the cell already
        out.append(replace(finding, sentence=" ".join(t for t in (body, tail) if t)))
    return out


def finding_lines(con, model: str | None = None, judge: str | None = None) -> list[str]:
    """The sentences, one per cell; a single line saying so when the warehouse has no judged output."""
    found = findings(con, model, judge)
    return [f.sentence for f in found] or ["no judged generations: run `qos run` or `qos ingest` first."]
