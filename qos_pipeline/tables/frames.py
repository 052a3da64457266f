"""The pandera schema of a staged table's frame, derived from its declaration: one column per declared
column with its dtype and nullability, the table's key as the frame's unique key, no other column
(strict). The stage that writes the table adds only its value rules (``checks``: a column's pattern, its
allowed values), which are not part of the declaration."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.tables.schema import Column, table

UTC = pd.DatetimeTZDtype("ns", "UTC")
_DTYPES: dict[str, Any] = {"VARCHAR": str, "INTEGER": int, "BIGINT": int, "DOUBLE": float, "BOOLEAN": bool,
                           "TIMESTAMPTZ": UTC}


def _dtype(column: Column) -> Any:
    # pandas holds a nullable integer column as Int64 (int64 has no missing value)
    if column.type in ("INTEGER", "BIGINT") and not column.required:
        return "Int64"
    return _DTYPES[column.type]


def pandera_schema(name: str, checks: dict[str, Any] | None = None, optional: tuple[str, ...] = (),
                   unique: tuple[str, ...] | None = None) -> pa.DataFrameSchema:
    """The frame schema of the declared table ``name``: ``checks`` by column (a value rule or a list of
    them), ``optional``: columns a frame may lack, ``unique``: the frame's unique key (default: the table's
    key). A check for an undeclared column raises naming it."""
    checks = dict(checks or {})
    declared = table(name).columns
    unknown = set(checks) - {c.name for c in declared}
    if unknown:
        raise ValueError(f"checks for column(s) {sorted(unknown)} that table {name!r} does not declare")
    columns = {c.name: pa.Column(_dtype(c), nullable=not c.required, required=c.name not in optional,
                                 checks=checks.get(c.name), coerce=c.type == "TIMESTAMPTZ") for c in declared}
    return pa.DataFrameSchema(columns, unique=list(unique or table(name).key), strict=True, name=name)
