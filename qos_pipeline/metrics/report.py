"""`qos report`: the main tables of the warehouse as text (percentages to one decimal)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qos_pipeline.taxonomy import ALL_LABELS
from qos_pipeline.metrics.build import CELL, connect_readonly

# A cell of the metric tables: every key column, so two versions (or formats, judges) of a model never share
# a row of the report.
_CELL = CELL


def _pct(x: float) -> str:
    return "" if pd.isna(x) else f"{100 * x:.1f}%"


def _one(values: pd.Series) -> float:
    """The single value of a report cell; two would mean the index misses a key column of the table."""
    if len(values) != 1:
        raise ValueError(f"report cell holds {len(values)} values; its index misses a key column")
    return values.iloc[0]


def _label_pivot(df: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    wide = df.pivot_table(index=index + ["n"], columns="label", values="rate", aggfunc=_one)
    wide = wide[[c for c in ALL_LABELS if c in wide.columns]].map(_pct)
    return wide.reset_index()


def _where(model: str | None, judge: str | None) -> tuple[str, list]:
    clauses, params = [], []
    if model:
        clauses.append("model_key = ?"), params.append(model)
    if judge:
        clauses.append("judge_id = ?"), params.append(judge)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def build_report(db: Path, model: str | None = None, judge: str | None = None) -> dict[str, pd.DataFrame]:
    where, params = _where(model, judge)
    with connect_readonly(db) as con:
        q = lambda sql: con.execute(sql.format(where=where), params).df()  # noqa: E731
        overall = q("SELECT * FROM label_rates_model{where}")
        by_group = q("SELECT * FROM label_rates_group{where}")
        disp = q("SELECT * FROM disparities{where}")
        names = q("SELECT * FROM label_rates_name{where}")
    if overall.empty:
        raise ValueError(f"no judged generations in {db}" + (f" for {where.strip()} {params}" if params else "")
                         + "; run `qos run` or `qos ingest` first")
    refusals = names[names["label"].isin(["refusal", "harmful refusal"])].pivot_table(
        index=_CELL + ["name_group", "name", "n"], columns="label", values="rate", aggfunc=_one).reset_index()
    refusals["refusal or harmful refusal"] = refusals["refusal"] + refusals["harmful refusal"]
    refusals = refusals.sort_values(_CELL + ["refusal or harmful refusal"], ascending=[True] * len(_CELL) + [False])
    disp_cols = _CELL + ["name_group", "n", "refusal_rate", "refusal_diff", "refusal_ratio",
                         "harmful_refusal_rate", "any_refusal_rate", "any_refusal_diff", "any_refusal_ratio"]
    disp = disp[disp_cols].copy()
    for c in ("refusal_rate", "refusal_diff", "harmful_refusal_rate", "any_refusal_rate", "any_refusal_diff"):
        disp[c] = disp[c].map(_pct)
    for c in ("refusal_ratio", "any_refusal_ratio"):
        disp[c] = disp[c].map(lambda x: "" if pd.isna(x) else f"{x:.2f}")
    for c in ("refusal", "harmful refusal", "refusal or harmful refusal"):
        refusals[c] = refusals[c].map(_pct)
    return {
        "Label shares per model": _label_pivot(overall, _CELL),
        "Label shares per model x group": _label_pivot(by_group, _CELL + ["name_group"]),
        f"Disparities vs reference group '{disp_ref(db)}'": disp,
        "Refusal rates per name": refusals,
    }


def disp_ref(db: Path) -> str:
    with connect_readonly(db) as con:
        row = con.execute("SELECT any_value(reference_group) FROM disparities").fetchone()
    return row[0] if row and row[0] else "?"


def format_report(tables: dict[str, pd.DataFrame]) -> str:
    parts = []
    for title, df in tables.items():
        parts.append(f"== {title} ==\n{df.to_string(index=False)}\n")
    return "\n".join(parts)
