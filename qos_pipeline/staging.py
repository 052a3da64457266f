"""Staged Parquet partitions: where each partition's file lives, atomic writes, named read errors.

Writers never share DuckDB's single write lock: each partition is staged as one Parquet file (written to a
temporary name, then renamed, so a killed step leaves the previous file intact). Re-running a partition
replaces its file, so rows are never duplicated. Pure: no dagster, no duckdb.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd

from qos_pipeline.provenance import check_key


class WarehouseError(RuntimeError):
    """A staged file or the database cannot be read or written; the message names it and what to do."""


def partition_file(staging: Path, table: str, group: str, model: str | None = None, part: str = "data") -> Path:
    """``staging/<table>/[model=<m>/]group=<g>/<part>.parquet``."""
    folder = staging / table
    if model is not None:
        folder = folder / f"model={check_key(model, 'model')}"
    return folder / f"group={check_key(group, 'group')}" / f"{check_key(part, 'part')}.parquet"


def write_partition(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` atomically: a crash mid-write leaves the previous file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_partition(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise WarehouseError(f"{what} has not been materialized yet ({path} is missing): materialize it first")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for truncated/corrupt files
        raise WarehouseError(
            f"{what}: staged file {path} cannot be read ({exc}); re-materialize that partition to rewrite it"
        ) from exc
