"""The evidence behind a gap: which templates and names drive it, and example outputs behind it.

A group's gap to the reference group on a measure is exactly the sum over templates of
k_group,t / n_group - k_ref,t / n_ref (each template's share of the two rates), so every template's
contribution is shown in points and as a share of the gap. The names are ranked by their own rate (with
the gap recomputed without each, from ``name_sensitivity``). Example outputs are a seeded, stratified
handful per group on the driving templates, with the judge's label and reason and the human label where
one exists: an analyst goes from a number to the responses behind it without SQL.

Pure functions over a read-only DuckDB connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.tables import CELL_KEYS

TOP_TEMPLATES = 5
EXAMPLES_PER_GROUP = 3


@dataclass(frozen=True)
class Evidence:
    """What drives one gap (cell x group vs reference x measure)."""

    cell: dict
    group: str
    reference: str
    measure: str
    gap: float
    templates: pd.DataFrame  # template_name, template_text, rate, rate_ref, contribution, share
    names: pd.DataFrame  # name, rate, gap_without_name
    examples: pd.DataFrame  # name_group, name, template_text, label, reason, human_label, response


def _cell_sql(cell: dict, alias: str = "") -> tuple[str, list]:
    prefix = f"{alias}." if alias else ""
    return " AND ".join(f"{prefix}{k} = ?" for k in CELL_KEYS), [cell[k] for k in CELL_KEYS]


def _labels(measure: str) -> str:
    return ", ".join(f"'{label}'" for label in taxonomy.MEASURES[measure])


def driving_templates(con, cell: dict, group: str, reference: str, measure: str = "any_refusal",
                      top: int | None = TOP_TEMPLATES) -> pd.DataFrame:
    """Each template's contribution to the gap (points, and share of the gap), largest in the gap's
    direction first; ``top`` of them (None: all)."""
    where, params = _cell_sql(cell)
    frame = con.execute(f"""
        WITH rows AS (SELECT template_id, any_value(template_name) AS template_name,
                             any_value(template_text) AS template_text, name_group,
                             count(*) AS n, count(*) FILTER (WHERE label IN ({_labels(measure)})) AS k
                      FROM judged WHERE {where} AND name_group IN (?, ?) GROUP BY template_id, name_group),
             totals AS (SELECT name_group, sum(n) AS total FROM rows GROUP BY name_group)
        SELECT template_id, any_value(template_name) AS template_name, any_value(template_text) AS template_text,
               sum(k / n) FILTER (WHERE name_group = ?) AS rate, sum(k / n) FILTER (WHERE name_group = ?) AS rate_ref,
               sum(CASE WHEN name_group = ? THEN k / total ELSE -k / total END) AS contribution
        FROM rows JOIN totals USING (name_group) GROUP BY template_id""",
                        [*params, group, reference, group, reference, group]).df()
    gap = frame["contribution"].sum()
    frame["share"] = frame["contribution"] / gap if gap else float("nan")
    frame = frame.sort_values("contribution", ascending=gap < 0, kind="stable").reset_index(drop=True)
    return frame if top is None else frame.head(top)


def driving_names(con, cell: dict, group: str, measure: str = "any_refusal") -> pd.DataFrame:
    """The group's names by rate, with the group's gap recomputed without each (``name_sensitivity``)."""
    where, params = _cell_sql(cell)
    return con.execute(f"""SELECT name, rate, gap_without_name, most_extreme FROM name_sensitivity
        WHERE {where} AND name_group = ? AND measure = ? ORDER BY rate DESC, name""",
                       [*params, group, measure if measure != "harmful_answer" else "any_refusal"]).df()


def examples(con, cell: dict, groups: list[str], template_ids: list[str], per_group: int = EXAMPLES_PER_GROUP,
             seed: int = 0) -> pd.DataFrame:
    """A seeded handful of outputs per group on the given templates (md5 of seed and generation id: the same
    rows on every build), with the judge's label and reason and the human label where one exists."""
    if not template_ids:
        return pd.DataFrame(columns=["name_group", "name", "template_text", "label", "reason", "human_label",
                                     "response", "generation_id"])
    where, params = _cell_sql(cell, "j")
    marks = ", ".join("?" for _ in template_ids)
    groups_marks = ", ".join("?" for _ in groups)
    return con.execute(f"""
        SELECT name_group, name, template_text, label, reason, human_label, response, generation_id FROM (
            SELECT j.name_group, j.name, j.template_text, j.label, j.reason, h.label AS human_label, j.response,
                   j.generation_id, row_number() OVER (PARTITION BY j.name_group
                                                       ORDER BY md5(? || j.generation_id)) AS pick
            FROM judged j LEFT JOIN human_label_consensus h
                 ON h.generation_id = j.generation_id AND h.model_key = j.model_key
            WHERE {where} AND j.name_group IN ({groups_marks}) AND j.template_id IN ({marks}))
        WHERE pick <= ? ORDER BY name_group, pick""",
                       [str(seed), *params, *groups, *template_ids, per_group]).df()


def evidence(con, cell: dict, group: str, reference: str, measure: str = "any_refusal", seed: int = 0,
             per_group: int = EXAMPLES_PER_GROUP) -> Evidence:
    """What drives ``group``'s gap against ``reference`` in ``cell``: the gap, its top templates and names, and
    seeded example outputs of both groups."""
    templates = driving_templates(con, cell, group, reference, measure, top=None)
    gap = float(templates["contribution"].sum())
    top = templates.head(TOP_TEMPLATES)
    return Evidence(cell, group, reference, measure, gap, top, driving_names(con, cell, group, measure),
                    examples(con, cell, [group, reference], top["template_id"].tolist(), per_group, seed))


def for_finding(con, finding) -> list[Evidence]:
    """The evidence of a finding's gaps: its significant primary gaps, else its largest gap."""
    gaps = [g for g in finding.significant if g.measure == "any_refusal"] or (
        [finding.largest] if finding.largest is not None else [])
    return [evidence(con, finding.cell, g.group, finding.reference, g.measure) for g in gaps]


OUTPUT_COLUMNS = ["name_group", "name", "template_text", "label", "reason", "human_label", "response"]
TEXT = ("template_text", "reason", "response")


def outputs(con, cell: dict, groups: list[str], limit: int) -> pd.DataFrame:
    """Every output of the cell's ``groups`` (at most ``limit``, the same seeded order as ``examples``)."""
    where, params = _cell_sql(cell, "j")
    marks = ", ".join("?" for _ in groups)
    return con.execute(f"""
        SELECT j.name_group, j.name, j.template_text, j.label, j.reason, h.label AS human_label, j.response
        FROM judged j LEFT JOIN human_label_consensus h
            ON h.generation_id = j.generation_id AND h.model_key = j.model_key
        WHERE {where} AND j.name_group IN ({marks}) ORDER BY md5('0' || j.generation_id) LIMIT ?""",
                       [*params, *groups, limit]).df()


def _pts(x: float) -> str:
    return "" if pd.isna(x) else f"{100 * x:+.1f}"


def template_rows(ev: Evidence) -> pd.DataFrame:
    """The evidence's templates as a display table: both groups' rates, the contribution and share of the gap."""
    t = ev.templates
    return pd.DataFrame({"template": t["template_text"], f"{ev.group} rate": (100 * t["rate"]).round(1),
                         f"{ev.reference} rate": (100 * t["rate_ref"]).round(1),
                         "contribution, pts": t["contribution"].map(_pts),
                         "share of the gap": (100 * t["share"]).round(0).map(lambda v: f"{v:.0f}%")})


def title(ev: Evidence) -> str:
    """The evidence's heading: measure, groups, gap, model and judge."""
    words = ev.measure.replace("_", " ")
    return (f"What drives the {words} gap of {ev.group} vs {ev.reference} ({_pts(ev.gap)} pts, "
            f"{ev.cell['model_key']}, judge {ev.cell['judge_id']})")


def to_html(ev: Evidence, table) -> str:
    """The evidence as an open <details> block (``table``: the page's table renderer)."""
    names = ev.names.head(4)
    name_text = "; ".join(f"{n} {100 * r:.0f}% (gap without it {_pts(w)})" for n, r, w in
                          zip(names["name"], names["rate"], names["gap_without_name"]))
    return (f"<details class='evidence' open><summary>{title(ev)}</summary>"
            f"<p class='note'>Templates by their contribution to the gap (the contributions sum to the gap):</p>"
            + table(template_rows(ev), text_columns=("template",))
            + f"<p class='note'>Names of {ev.group} by rate: {name_text}.</p>"
            + f"<p class='note'>Example outputs on these templates (seeded, {EXAMPLES_PER_GROUP} per group; judge's "
              "label and reason, human label where there is one):</p>"
            + table(ev.examples[OUTPUT_COLUMNS], text_columns=TEXT) + "</details>")


def to_markdown(ev: Evidence, examples: int = 2, chars: int = 300) -> list[str]:
    """The evidence as markdown lines for the UI (top templates, a few outputs cut at ``chars``)."""
    lines = [f"**{title(ev)}**", "", "| template | group rate | ref rate | contribution, pts |", "|---|---:|---:|---:|"]
    lines += [f"| {t.template_text} | {100 * t.rate:.1f}% | {100 * t.rate_ref:.1f}% | {_pts(t.contribution)} |"
              for t in cast(Iterable[Any], ev.templates.head(3).itertuples())]
    lines.append("")
    for group, part in ev.examples.groupby("name_group", sort=False):
        for r in part.head(examples).itertuples():
            text = " ".join(str(r.response).split())
            human = f", human: {r.human_label}" if isinstance(r.human_label, str) else ""
            more = "..." if len(text) > chars else ""
            lines.append(f"- *{group}, {r.name}* ({r.label}{human}): {text[:chars]}{more}")
    return lines + [""]
