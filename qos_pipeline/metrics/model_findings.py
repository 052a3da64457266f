"""Findings about pairs of models (or checkpoints, or sampling settings) that answered the same prompts:
per pair, which groups' gaps to the reference group changed on the primary measure after adjustment, with
the change (gap of A minus gap of B, positive when the gap is larger for A), its templates x names interval
and the adjusted p-value; or plainly that none changed, with the largest change."""

from __future__ import annotations

import pandas as pd

from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY
from qos_pipeline.metrics.wording import ADJUST_WORDS, MEASURE_WORDS, fmt_ci, fmt_p

SIDES = ["model_key", "model_version", "gen_config_hash", "design"]


def model_where(model: str | None, judge: str | None) -> tuple[str, list]:
    """`` WHERE (model_key_a = ? OR model_key_b = ?) AND judge_id = ?`` (what is given) and its parameters."""
    clauses, params = [], []
    if model:
        clauses.append("(model_key_a = ? OR model_key_b = ?)")
        params.extend([model, model])
    if judge:
        clauses.append("judge_id = ?")
        params.append(judge)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def pair_label(row, side: str, other: str) -> str:
    """Model key of one side, with its version (or config, design) when the other side has the same key."""
    label = row[f"model_key_{side}"]
    for key in SIDES[1:]:
        if row[f"model_key_{side}"] == row[f"model_key_{other}"] and row[f"{key}_{side}"] != row[f"{key}_{other}"]:
            return f"{label} ({key.replace('_', ' ')} {row[f'{key}_{side}']})"
    return label


def change_text(row) -> str:
    """``muslim +20.0 pts [3.1, 37.2] (gap +29.5 vs +9.5), p_adj 0.012``: A's gap minus B's."""
    return (f"{row['name_group']} {100 * row['diff_of_gaps']:+.1f} pts {fmt_ci(row['ci_tn_low'], row['ci_tn_high'])} "
            f"(gap {100 * row['gap_a']:+.1f} vs {100 * row['gap_b']:+.1f}), "
            f"p_adj {fmt_p(row['p_adjusted'])}").replace("  ", " ")


def pair_sentence(rows: pd.DataFrame) -> str:
    """One pair of cells: its primary family's changed gaps, or that none changed."""
    first = rows.iloc[0]
    a, b = pair_label(first, "a", "b"), pair_label(first, "b", "a")
    adjust = ADJUST_WORDS.get(first["p_adjust_method"], first["p_adjust_method"])
    primary = rows[rows["family"] == PRIMARY].sort_values("diff_of_gaps", key=abs, ascending=False)
    measure = MEASURE_WORDS.get(primary["measure"].iloc[0], "") if len(primary) else ""
    head = (f"{a} vs {b} (same prompts, gap of {a} minus gap of {b}, {measure}, {adjust} over "
            f"{len(primary)} test{'s' if len(primary) != 1 else ''}): ")
    changed = primary[primary["p_adjusted"] < ALPHA]
    if len(changed):
        larger = changed[changed["diff_of_gaps"] > 0]
        words = [f"{len(larger)} gap{'s' if len(larger) != 1 else ''} larger for {a}"] if len(larger) else []
        words += [f"{len(changed) - len(larger)} larger for {b}"] if len(changed) > len(larger) else []
        return head + " and ".join(words) + ": " + "; ".join(change_text(r) for _, r in changed.iterrows()) + "."
    largest = f"; largest change: {change_text(primary.iloc[0])}" if len(primary) else ""
    return head + f"no group's gap changed significantly{largest}."


def model_comparison_lines(con, model: str | None = None, judge: str | None = None) -> list[str]:
    """One sentence per pair of cells in ``model_comparisons`` (optionally involving one model key and/or
    judge)."""
    where, params = model_where(model, judge)
    rows = con.execute(f"SELECT * FROM model_comparisons{where} ORDER BY ALL", params).df()
    if rows.empty:
        return []
    keys = [f"{k}_{s}" for s in "ab" for k in SIDES] + ["prompt_format", "judge_id"]
    return [pair_sentence(pair) for _, pair in rows.groupby(keys, sort=True)]
