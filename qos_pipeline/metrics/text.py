"""The report as text (`qos report`): findings wrapped to the width without breaking a `command`, cell keys
shared by every row said once above the tables, wide tables in blocks that fit the width."""

from __future__ import annotations

import textwrap

import pandas as pd

from qos_pipeline.tables import CELL_KEYS

WIDTH = 100


def constant_keys(tables: dict[str, pd.DataFrame | str]) -> dict[str, str]:
    """Cell keys with one value in every table: printed once above the tables instead of in every row."""
    frames = [df for df in tables.values() if isinstance(df, pd.DataFrame) and len(df)]
    out = {}
    for key in CELL_KEYS:
        values = {v for df in frames if key in df.columns for v in df[key].astype(str).unique()}
        if len(values) == 1:
            out[key] = values.pop()
    return out


def _fill(text: str, width: int) -> str:
    """Wrap a finding, never inside a `command` (it stays copyable on one line)."""
    parts = text.split("`")
    kept = "`".join(p.replace(" ", "\0") if i % 2 else p for i, p in enumerate(parts))
    return textwrap.fill(kept, width, subsequent_indent="    ", break_long_words=False).replace("\0", " ")


def format_report(tables: dict[str, pd.DataFrame | str], width: int = WIDTH) -> str:
    """Text: findings wrapped to ``width``; cell keys shared by every row said once; the first table keeps
    its model_key column (each row names its model), the others drop it when there is only one."""
    constant = constant_keys(tables)
    parts = []
    if constant:
        cell = "cell: " + ", ".join(f"{k}={v}" for k, v in constant.items())
        parts.append(textwrap.fill(cell, width, subsequent_indent="      ") + "\n")
    first = True
    for title, df in tables.items():
        if isinstance(df, str):
            body = "\n".join(_fill(line, width) for line in df.splitlines())
            parts.append(f"== {title} ==\n{body}\n")
            continue
        drop = [k for k in constant if k in df.columns and not (first and k == "model_key")]
        first = False
        line_width = width if df.attrs.get("wrap") else None
        body = df.drop(columns=drop).to_string(index=False, line_width=line_width) if len(df) else "(none)"
        note = df.attrs.get("note")
        if note:
            body += "\n" + textwrap.fill(f"({note})", width)
        parts.append(f"== {title} ==\n{body}\n")
    return "\n".join(parts)
