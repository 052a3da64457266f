"""Findings in plain words: per model cell, which group gaps of the primary family (each group vs the
reference group on the primary measure) survive the p-value adjustment, with the gap, its group-level
interval (templates x names resampled: the claim is about groups, not about these names) and the adjusted
p-value; and, when none does, why (no gap, a model that barely refuses, statistics off, a design too small
for the test). Then what qualifies them: exploratory gaps (the secondary family), comparisons the design
cannot bring to significance, groups compared on fewer templates than the design has, and a mixed-model
cross-check that disagrees. Then, per pair of models with the same prompts, how the gaps changed.

Pure functions over a read-only DuckDB connection: the terminal report, the HTML page and the
``metric_tables`` asset's metadata all print the same sentences. One small function per clause.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from qos_pipeline.metrics.build import CELL
from qos_pipeline.metrics.model_findings import model_comparison_lines
from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY, PRIMARY_MEASURE
from qos_pipeline.metrics.wording import (  # noqa: F401 (cell_labels, fmt_p: read from here by plots and html)
    ADJUST_WORDS, MEASURE_WORDS, MEASURES, cell_labels, cell_where, fmt_floor, fmt_p, missing, reference_group)
from qos_pipeline.taxonomy import REFUSAL_LABELS

BARELY_REFUSES = 0.02
PILOT_HINT = ("qos ingest ../shared/data/pilot/df_annotated_llama13.csv --model llama-2-13b-chat "
              "--labels human")


def _num(x) -> float | None:
    return None if missing(x) else float(x)


@dataclass(frozen=True)
class Gap:
    """One comparison of ``group_comparisons``: the gap with its headline (templates x names) interval,
    its family and adjusted p, and what the design allows it (floors, shared templates)."""

    measure: str
    group: str
    diff: float
    ci_low: float | None
    ci_high: float | None
    p_adjusted: float | None
    vs_group: str = ""
    family: str = PRIMARY
    names: int = 0
    names_vs: int = 0
    p_floor: float | None = None
    p_adjusted_floor: float | None = None
    family_size: int = 0
    names_needed: int | None = None
    shared_templates: int = 0
    templates: int = 0
    dropped: int = 0

    def text(self) -> str:
        ci = "" if missing(self.ci_low) else f" [{100 * self.ci_low:.1f}, {100 * self.ci_high:.1f}]"
        return f"{self.group} {100 * self.diff:+.1f} pts{ci}, p_adj {fmt_p(self.p_adjusted)}"

    def out_of_reach(self) -> bool:
        """Not significant whatever the data: even if every comparison of the family reached its floor."""
        return not missing(self.p_adjusted_floor) and self.p_adjusted_floor >= ALPHA

    def needs_others(self) -> bool:
        """Its floor is above the family's first threshold: significant only after others of the family."""
        return not missing(self.p_floor) and self.family_size > 0 and self.p_floor > ALPHA / self.family_size


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


def _gap(row: pd.Series) -> Gap:
    return Gap(row["measure"], row["name_group"], float(row["diff"]), _num(row["diff_ci_tn_low"]),
               _num(row["diff_ci_tn_high"]), _num(row["p_adjusted"]), row["vs_group"], row["family"],
               int(row["names"]), int(row["names_vs"]), _num(row["p_floor"]), _num(row["p_adjusted_floor"]),
               int(row["family_size"]), None if missing(row["names_needed"]) else int(row["names_needed"]),
               int(row["shared_templates"]), int(row["templates"]), int(row["n_dropped"] + row["n_dropped_vs"]))


def _floor_why(g: Gap) -> str:
    why = (f"{g.names} names against {g.names_vs}: p >= {fmt_floor(g.p_floor)}, against the family's threshold "
           f"{ALPHA:g}/{g.family_size} = {fmt_floor(ALPHA / g.family_size)} for its first test")
    if g.out_of_reach():
        why += (f"; even if every comparison of the family were as extreme as the design allows, its adjusted p "
                f"would be {fmt_p(g.p_adjusted_floor)}")
    return why + (f"; {g.names_needed} names would reach it on their own" if g.names_needed else "")


def _floor_note(g: Gap) -> str:
    """Why this primary comparison cannot (or can hardly) reach significance, in numbers."""
    what = f"{g.group} vs {g.vs_group}"
    if g.out_of_reach():
        return f"{what} cannot reach significance by design ({_floor_why(g)})"
    return f"{what} can reach significance only after others of its family ({_floor_why(g)})"


def design_notes(gaps: list[Gap]) -> list[str]:
    """The primary comparisons the design holds back, each; the exploratory ones, counted with an example."""
    notes = [_floor_note(g) for g in gaps if g.family == PRIMARY and (g.out_of_reach() or g.needs_others())]
    held = [g for g in gaps if g.family != PRIMARY and g.out_of_reach()]
    if held:
        total, g = sum(g.family != PRIMARY for g in gaps), held[0]
        notes.append(f"{len(held)} of {total} exploratory comparisons cannot reach significance by design, e.g. "
                     f"{g.group} vs {g.vs_group} ({MEASURE_WORDS[g.measure]}; {_floor_why(g)})")
    return notes


def balance_notes(gaps: list[Gap]) -> list[str]:
    """Primary comparisons made on fewer templates than the cell has (the grid is incomplete)."""
    notes = []
    for g in gaps:
        if g.family == PRIMARY and g.shared_templates < g.templates:
            notes.append(f"{g.group} vs {g.vs_group} compared on the {g.shared_templates} of {g.templates} "
                         f"templates every name of both carries ({g.dropped} outputs left out; not paired on the rest)")
    return notes


def cross_check_notes(effects: pd.DataFrame) -> list[str]:
    """Where the mixed model's interval disagrees with the design-based one (see group_effects_mixed)."""
    rows = effects[effects["design_agrees"] == False] if len(effects) else effects  # noqa: E712 (NULL: unknown)
    return [f"mixed-model cross-check for {r.name_group}: odds ratio {r.odds_ratio:.2f} "
            f"[{_odds(r.log_odds_ci_low)}, {_odds(r.log_odds_ci_high)}]; {r.note}" for r in rows.itertuples()]


def _odds(log_odds: float) -> str:
    return "n/a" if missing(log_odds) else f"{np.exp(min(log_odds, 700.0)):.2f}"


def _adjective(measure: str) -> str:
    return MEASURE_WORDS[measure].replace(" ", "-")


def _tests(f: Finding) -> str:
    return f"{f.comparisons} primary test{'s' if f.comparisons != 1 else ''}, {MEASURE_WORDS[f.measure]}"


def _gaps_clause(f: Finding, adjust: str) -> str:
    more = sum(g.diff > 0 for g in f.significant)
    less = len(f.significant) - more
    tests = _tests(f)
    if not f.significant:
        return f"no group's {_adjective(f.measure)} rate differs from {f.reference}'s after {adjust} adjustment ({tests})"
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


def _underpowered(primary: list[Gap]) -> str:
    """Why no primary gap can be significant, when none of them can reach ALPHA whatever the data."""
    if not primary or not all(g.out_of_reach() for g in primary):
        return ""
    floor = min(g.p_floor for g in primary)
    return (f"with so few names per group the permutation test cannot reach p < {ALPHA:g} after adjustment "
            f"(smallest possible p {fmt_floor(floor)})")


def _rows_of(frame: pd.DataFrame, key: dict) -> pd.DataFrame:
    return frame[(frame[CELL] == pd.Series(key)).all(axis=1)] if len(frame) else frame


def _compared(mine: pd.DataFrame, effects: pd.DataFrame) -> dict:
    """The fields of a cell's Finding that its group comparisons decide."""
    gaps = [_gap(r) for _, r in mine.iterrows()]
    primary = [g for g in gaps if g.family == PRIMARY]
    measure = primary[0].measure if primary else PRIMARY_MEASURE
    order = lambda g: (MEASURES.index(g.measure), -g.diff)  # noqa: E731
    sig = sorted((g for g in primary if not missing(g.p_adjusted) and g.p_adjusted < ALPHA), key=order)
    explored = sorted((g for g in gaps if g.family != PRIMARY and not missing(g.p_adjusted) and g.p_adjusted < ALPHA),
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
    keys = ", ".join(CELL)
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
    out = []
    for (_, cell), label in zip(cells.iterrows(), cell_labels(cells)):
        key = {k: cell[k] for k in CELL}
        mine = _rows_of(comparisons, key)
        cell_groups = _rows_of(groups, key)["groups"]
        names = list(cell_groups.iloc[0]) if len(cell_groups) else []
        base = dict(cell=key, label=label, reference=reference, n=int(cell["n"]),
                    any_refusal_rate=float(cell["any_rate"] or 0.0), groups=max(len(names) - 1, 0))
        status, extra = ("one_group" if len(names) < 2 else "no_reference" if reference not in names else
                         "stats_off" if not cell["boot_resamples"] else "no_comparisons" if mine.empty else ""), {}
        if not status:
            extra = _compared(mine, _rows_of(effects, key))
            status = "gaps" if extra["significant"] or extra["exploratory"] else "none"
        finding = Finding(status=status, **base, **extra)
        out.append(replace(finding, sentence=_sentence(finding)))
    return out


def finding_lines(con, model: str | None = None, judge: str | None = None) -> list[str]:
    """The sentences, one per cell, then one per pair of models with the same prompts; a single line saying
    so when the warehouse has no judged output."""
    found = findings(con, model, judge)
    if not found:
        return ["no judged generations: run `qos run` or `qos ingest` first."]
    return [f.sentence for f in found] + model_comparison_lines(con, model, judge)
