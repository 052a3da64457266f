"""Findings in plain words: per model cell, which group gaps of the primary family (each group vs the
reference group on the primary measure) survive the p-value adjustment, with the gap, its group-level
interval (templates x names resampled: the claim is about groups, not about these names) and the adjusted
p-value; and, when none does, why (no gap, a model that barely refuses, statistics off, a design too small
for the test). Then what qualifies them: exploratory gaps (the secondary family), comparisons the design
cannot bring to significance, groups compared on fewer templates than the design has, and a mixed-model
cross-check that disagrees. Then, per pair of models with the same prompts, how the gaps changed.

Where a model's outputs carry human labels, the sentence leads with the prediction-powered gaps (valid when
the judge errs); every sentence ends with what is known of its judge on that model (``instrument``), and a
gap on a measure the judge is flagged for (or never checked on) says so next to the number.

Pure functions over a read-only DuckDB connection: the terminal report, the HTML page and the
``metric_tables`` asset's metadata all print the same sentences. One small function per clause.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast

import pandas as pd

from qos_pipeline.metrics import instrument
from qos_pipeline.metrics.gaps import Gap, balance_notes, cross_check_notes, design_notes, gap, ppi_gap
from qos_pipeline.metrics.model_findings import model_comparison_lines
from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY, PRIMARY_MEASURE
from qos_pipeline.metrics.wording import (  # noqa: F401 (cell_labels, fmt_p: read from here by plots and html)
    ADJUST_WORDS,
    MEASURE_WORDS,
    MEASURES,
    cell_labels,
    cell_where,
    fmt_floor,
    fmt_p,
    missing,
    reference_group,
)
from qos_pipeline.tables import CELL_KEYS
from qos_pipeline.taxonomy import REFUSAL_LABELS

BARELY_REFUSES = 0.02
PILOT_HINT = ("qos ingest ../shared/data/pilot/df_annotated_llama13.csv --model llama-2-13b-chat "
              "--labels human")


@dataclass(frozen=True)
class Finding:
    """What one cell (model x version x prompt format x generation config x design x judge) shows."""

    cell: dict[str, str]
    label: str
    status: str  # "gaps" | "none" | "stats_off" | "no_comparisons" | "no_reference" | "one_group"
    reference: str
    n: int
    any_refusal_rate: float
    significant: list[Gap] = field(default_factory=list)  # the primary family's
    exploratory: list[Gap] = field(default_factory=list)  # significant within the secondary family
    largest: Gap | None = None
    groups: int = 0
    comparisons: int = 0  # tests of the primary family
    adjust: str = "holm"
    measure: str = PRIMARY_MEASURE
    underpowered: str = ""
    notes: list[str] = field(default_factory=list)  # floors, balance, cross-check: said after the main clause
    sentence: str = ""

def _ppi_lead(label: str, rows: pd.DataFrame, reference: str, adjust: str) -> str:
    """The prediction-powered gaps (template x name intervals) that lead a cell's sentence, '' without."""
    if rows.empty:
        return ""
    gaps = [ppi_gap(r) for _, r in rows.sort_values("diff", ascending=False).iterrows()]
    first = rows[rows["measure"] == rows["measure"].iloc[0]]
    per_group = sorted(set(first["n_labelled"]) | set(first["n_labelled_vs"]))
    total = int(first["n_labelled"].sum() + first["n_labelled_vs"].iloc[0])
    each = f"{per_group[0]}" if len(per_group) == 1 else f"{per_group[0]}-{per_group[-1]}"
    significant = lambda g: not missing(g.p_adjusted) and g.p_adjusted < ALPHA  # noqa: E731
    primary = [g for g in gaps if g.family == PRIMARY]
    measure = MEASURE_WORDS.get(primary[0].measure, primary[0].measure) if primary else "any refusal"
    head = (f"{label}, corrected for the judge's errors with {total} human labels ({each} per group; "
            "prediction-powered, template x name intervals): ")
    if any(significant(g) for g in primary):
        text = (f"{measure} gap vs {reference} after {ADJUST_WORDS.get(adjust, adjust)} adjustment: "
                + "; ".join(g.text() for g in primary if significant(g)))
    else:
        largest = max(primary, key=lambda g: abs(g.diff), default=None)
        text = f"no group's {measure} gap vs {reference} survives adjustment" + (
            f" (largest: {largest.text()})" if largest else "")
    explored = [g for g in gaps if g.family != PRIMARY and significant(g)]
    if explored:
        text += "; exploratory: " + "; ".join(f"{MEASURE_WORDS.get(g.measure, g.measure)}: {g.text()}"
                                               for g in explored[:EXPLORATORY_SHOWN])
    return head + text + ". Judge labels alone: "

def _adjective(measure: str) -> str:
    return MEASURE_WORDS[measure].replace(" ", "-")


def _tests(f: Finding) -> str:
    return f"{f.comparisons} primary test{'s' if f.comparisons != 1 else ''}, {MEASURE_WORDS[f.measure]}"


def _gaps_clause(f: Finding, adjust: str) -> str:
    more = sum(g.diff > 0 for g in f.significant)
    less = len(f.significant) - more
    tests = _tests(f)
    if not f.significant:
        return (f"no group's {_adjective(f.measure)} rate differs from {f.reference}'s "
                f"after {adjust} adjustment ({tests})")
    parts = [f"{more} of {f.groups} groups refused more often than {f.reference}"] if more else []
    parts += [f"{less} of {f.groups} less often"] if less else []
    return " and ".join(parts) + f" after {adjust} adjustment ({tests}): " + "; ".join(g.text() for g in f.significant)


EXPLORATORY_SHOWN = 4  # the rest are in the table


def _exploratory_clause(f: Finding) -> str:
    shown = [f"{MEASURE_WORDS[g.measure]}: " + (g.text() if g.vs_group == f.reference else
                                                 g.text().replace(f"{g.group} ", f"{g.group} vs {g.vs_group} ", 1))
             for g in f.exploratory[:EXPLORATORY_SHOWN]]
    more = len(f.exploratory) - len(shown)
    if not shown:
        return ""
    return ("; exploratory (secondary family, adjusted apart): " + "; ".join(shown)
            + (f"; and {more} more in the table" if more > 0 else ""))


def _none_clause(f: Finding, adjust: str) -> str:
    largest = f"; largest {_adjective(f.measure)} gap: {f.largest.text()}" if f.largest is not None else ""
    if f.any_refusal_rate < BARELY_REFUSES:
        return (f"no disparity found: the model barely refuses ({100 * f.any_refusal_rate:.1f}% of {f.n} "
                "outputs), so there is little to compare" + (f", and {f.underpowered}" if f.underpowered else "")
                + ". To see the paper's finding, ingest the pilot's human-labelled Llama-2-13b-chat outputs: "
                f"`{PILOT_HINT}`.")
    if f.underpowered:
        return (f"no disparity found, and none could be: {f.underpowered}{largest}. Audit more names per group "
                "to test it, e.g. `qos run --design full`.")
    return (f"no disparity found: no group's {_adjective(f.measure)} rate differs from {f.reference}'s after "
            f"{adjust} adjustment ({_tests(f)}){largest}.")


STATUS_WORDS = {
    "stats_off": "statistics are off for this build (0 bootstrap resamples): no intervals, tests or findings; "
                 "rebuild with bootstrap_resamples >= 100 (default 1000).",
    "no_comparisons": "the build computed no group comparisons for this cell; rebuild with `qos rebuild`.",
    "one_group": "only one name group was audited, so there is nothing to compare.",
}


def _sentence(f: Finding) -> str:
    adjust = ADJUST_WORDS.get(f.adjust, f.adjust)
    head = f"{f.label}: "
    if f.status in STATUS_WORDS:
        return head + STATUS_WORDS[f.status]
    if f.status == "no_reference":
        return head + f"reference group '{f.reference}' has no judged outputs here, so no gap can be measured."
    notes = "".join(f" {note[0].upper()}{note[1:]}." for note in f.notes)
    if f.status == "gaps":
        return head + _gaps_clause(f, adjust) + _exploratory_clause(f) + "." + notes
    return head + _none_clause(f, adjust) + notes


def _below_alpha(p: float | None) -> bool:
    return p is not None and not missing(p) and p < ALPHA


def _underpowered(primary: list[Gap]) -> str:
    """Why no primary gap can be significant, when none of them can reach ALPHA whatever the data."""
    if not primary or not all(g.out_of_reach() for g in primary):
        return ""
    floor = min(cast(float, g.p_floor) for g in primary)  # set: every one is out of reach
    return (f"with so few names per group the permutation test cannot reach p < {ALPHA:g} after adjustment "
            f"(smallest possible p {fmt_floor(floor)})")


def _rows_of(frame: pd.DataFrame, key: dict) -> pd.DataFrame:
    return frame[(frame[CELL_KEYS] == pd.Series(key)).all(axis=1)] if len(frame) else frame


def _compared(mine: pd.DataFrame, effects: pd.DataFrame, check: instrument.Check | None = None) -> dict:
    """The fields of a cell's Finding that its group comparisons decide."""
    gaps = [gap(r, check) for _, r in mine.iterrows()]
    primary = [g for g in gaps if g.family == PRIMARY]
    measure = primary[0].measure if primary else PRIMARY_MEASURE
    order = lambda g: (MEASURES.index(g.measure), -g.diff)  # noqa: E731
    sig = sorted((g for g in primary if _below_alpha(g.p_adjusted)), key=order)
    explored = sorted((g for g in gaps if g.family != PRIMARY and _below_alpha(g.p_adjusted)),
                      key=order)
    largest = max((g for g in primary if not pd.isna(g.diff)), key=lambda g: abs(g.diff), default=None)
    underpowered = _underpowered(primary)  # says it for the whole primary family: no note per comparison
    held = design_notes([g for g in gaps if not (underpowered and g.family == PRIMARY)])
    return dict(significant=sig, exploratory=explored, largest=largest, comparisons=len(primary), measure=measure,
                adjust=str(mine["p_adjust_method"].iloc[0]), underpowered=underpowered,
                notes=held + balance_notes(gaps) + cross_check_notes(effects))


def findings(con, model: str | None = None, judge: str | None = None) -> list[Finding]:
    """One finding per cell of ``label_rates_model`` (optionally one model key and/or judge)."""
    where, params = cell_where(model, judge)
    keys = ", ".join(CELL_KEYS)
    refusal = ", ".join(f"'{label}'" for label in REFUSAL_LABELS)
    cells = con.execute(f"""
        SELECT {keys}, any_value(n) AS n, sum(count) FILTER (WHERE label IN ({refusal})) / any_value(n) AS any_rate,
               max(boot_resamples) AS boot_resamples
        FROM label_rates_model{where} GROUP BY ALL ORDER BY ALL""", params).df()
    comparisons = con.execute(f"SELECT * FROM group_comparisons{where}", params).df()
    effects = con.execute(f"SELECT * FROM group_effects_mixed{where}", params).df()
    groups = con.execute(f"SELECT {keys}, list(DISTINCT name_group ORDER BY name_group) AS groups "
                         f"FROM label_rates_group{where} GROUP BY ALL", params).df()
    reference = reference_group(con)
    checks = instrument.checks(con)
    ppi = instrument.ppi_gaps(con, where, params)
    out = []
    for (_, cell), label in zip(cells.iterrows(), cell_labels(cells)):
        key = {k: cell[k] for k in CELL_KEYS}
        mine = _rows_of(comparisons, key)
        cell_groups = _rows_of(groups, key)["groups"]
        names = list(cell_groups.iloc[0]) if len(cell_groups) else []
        base: dict[str, Any] = dict(cell=key, label=label, reference=reference, n=int(cell["n"]),
                    any_refusal_rate=float(cell["any_rate"] or 0.0), groups=max(len(names) - 1, 0))
        status, extra = ("one_group" if len(names) < 2 else "no_reference" if reference not in names else
                         "stats_off" if not cell["boot_resamples"] else "no_comparisons" if mine.empty else ""), {}
        check = checks.get((key["model_key"], key["judge_id"]))
        if not status:
            extra = _compared(mine, _rows_of(effects, key), check)
            status = "gaps" if extra["significant"] or extra["exploratory"] else "none"
        finding = Finding(status=status, **base, **extra)
        lead = _ppi_lead(label, _rows_of(ppi, key), reference, finding.adjust)
        body = _sentence(finding)
        body = lead + body[len(label) + 2:] if lead else body  # the lead names the cell already
        tail = check.sentence() if check is not None else ""
        out.append(replace(finding, sentence=" ".join(t for t in (body, tail) if t)))
    return out


def finding_lines(con, model: str | None = None, judge: str | None = None) -> list[str]:
    """The sentences, one per cell, then one per pair of models with the same prompts; a single line saying
    so when the warehouse has no judged output."""
    found = findings(con, model, judge)
    if not found:
        return ["no judged generations: run `qos run` or `qos ingest` first."]
    return [f.sentence for f in found] + model_comparison_lines(con, model, judge)
