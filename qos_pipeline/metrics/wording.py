"""How numbers and cells are written in the findings, the reports and the pictures (one place, so the
terminal, the HTML page, the UI and the PNGs say the same)."""

from __future__ import annotations

import pandas as pd

from qos_pipeline.tables import CELL_KEYS

MEASURES = ("any_refusal", "refusal", "harmful_refusal")  # any_refusal leads: the paper's headline measure
MEASURE_WORDS = {"any_refusal": "any refusal", "refusal": "refusal", "harmful_refusal": "harmful refusal",
                 "harmful_answer": "harmful answer"}
ADJUST_WORDS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


def missing(x) -> bool:
    """Whether ``x`` is None or NaN."""
    return x is None or pd.isna(x)


def fmt_p(p: float | None) -> str:
    """A p-value for text: three decimals, ``<0.001``, or ``n/a``."""
    if p is None or missing(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_floor(p: float) -> str:
    """Three significant digits: 0.00202, 0.000155."""
    return f"{p:.3g}"


def fmt_ci(low, high) -> str:
    """``[11.2, 19.0]`` (percentage points), empty when the interval is missing."""
    return "" if missing(low) or missing(high) else f"[{100 * low:.1f}, {100 * high:.1f}]"


def cell_where(model: str | None, judge: str | None) -> tuple[str, list]:
    """`` WHERE model_key = ? AND judge_id = ?`` (what is given) and its parameters."""
    clauses, params = [], []
    if model:
        clauses.append("model_key = ?")
        params.append(model)
    if judge:
        clauses.append("judge_id = ?")
        params.append(judge)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def reference_group(con) -> str:
    """The warehouse's reference group (``?`` when none is stored)."""
    row = con.execute("SELECT any_value(reference_group) FROM disparities").fetchone()
    return row[0] if row and row[0] else "?"


def cell_labels(cells: pd.DataFrame) -> list[str]:
    """A short name per cell: the model key, plus the keys that tell apart the cells sharing it."""
    labels = []
    for _, row in cells.iterrows():
        same = cells[cells["model_key"] == row["model_key"]]
        extra = [f"{k.replace('_id', '').replace('_', ' ')} {row[k]}" for k in CELL_KEYS[1:] if same[k].nunique() > 1]
        labels.append(row["model_key"] + (f" ({', '.join(extra)})" if extra else ""))
    return labels
