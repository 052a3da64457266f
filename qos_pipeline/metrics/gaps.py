"""One comparison of a findings sentence (``Gap``, from a row of ``group_comparisons`` or
``group_comparisons_ppi``) and the notes that qualify comparisons: floors the design sets, templates left
out of an unbalanced pair, a disagreeing mixed-model cross-check. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from qos_pipeline.metrics import instrument
from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY
from qos_pipeline.metrics.wording import MEASURE_WORDS, fmt_floor, fmt_p, missing


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
    note: str = ""  # what is known against the judge here (``instrument.Check.note``)
    judge_only: float | None = None  # for a prediction-powered gap: the judge's own

    def text(self) -> str:
        """One line: the gap with its interval, the judge-only figure and any note."""
        low, high = cast(float, self.ci_low), cast(float, self.ci_high)  # both set or both missing
        ci = "" if missing(low) else f" [{100 * low:.1f}, {100 * high:.1f}]"
        alone = "" if self.judge_only is None else f" (judge alone {100 * self.judge_only:+.1f})"
        note = f" ({self.note})" if self.note else ""
        return f"{self.group} {100 * self.diff:+.1f} pts{ci}{alone}, p_adj {fmt_p(self.p_adjusted)}{note}"

    def out_of_reach(self) -> bool:
        """Not significant whatever the data: even if every comparison of the family reached its floor."""
        floor = self.p_adjusted_floor
        return floor is not None and not missing(floor) and floor >= ALPHA

    def needs_others(self) -> bool:
        """Its floor is above the family's first threshold: significant only after others of the family."""
        floor = self.p_floor
        return floor is not None and not missing(floor) and self.family_size > 0 and floor > ALPHA / self.family_size


def gap(row: pd.Series, check: instrument.Check | None = None) -> Gap:
    """The gap of one ``group_comparisons`` row, with the judge check's note when given."""
    note = check.note(row["measure"], row["name_group"]) if check is not None else ""
    return Gap(row["measure"], row["name_group"], float(row["diff"]), _num(row["diff_ci_tn_low"]),
               _num(row["diff_ci_tn_high"]), _num(row["p_adjusted"]), row["vs_group"], row["family"],
               int(row["names"]), int(row["names_vs"]), _num(row["p_floor"]), _num(row["p_adjusted_floor"]),
               int(row["family_size"]), None if missing(row["names_needed"]) else int(row["names_needed"]),
               int(row["shared_templates"]), int(row["templates"]), int(row["n_dropped"] + row["n_dropped_vs"]),
               note)


def ppi_gap(row: pd.Series) -> Gap:
    """The gap of one ``group_comparisons_ppi`` row, with the judge-only difference."""
    return Gap(row["measure"], row["name_group"], float(row["diff"]), _num(row["diff_ci_tn_low"]),
               _num(row["diff_ci_tn_high"]), _num(row["p_adjusted"]), row["vs_group"], row["family"],
               judge_only=_num(row["judge_diff"]))


def _floor_why(g: Gap) -> str:
    floor = cast(float, g.p_floor)  # set wherever a gap is out of reach or needs others
    why = (f"{g.names} names against {g.names_vs}: p >= {fmt_floor(floor)}, against the family's threshold "
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
            f"[{_odds(r.log_odds_ci_low)}, {_odds(r.log_odds_ci_high)}]; {r.note}"
            for r in cast(Iterable[Any], rows.itertuples())]


def _odds(log_odds: float) -> str:
    return "n/a" if missing(log_odds) else f"{np.exp(min(log_odds, 700.0)):.2f}"
