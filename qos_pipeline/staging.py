"""Staged Parquet partitions: where each partition's file lives, atomic writes, named read errors.

Writers never share DuckDB's single write lock: each partition is staged as one Parquet file (written to a
temporary name, then renamed, so a killed step leaves the previous file intact). Re-running a partition
replaces its file, so rows are never duplicated. Pure: no dagster, no duckdb.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd

from qos_pipeline.provenance import check_key

SETTINGS = "qos_settings"
"""Key of the settings a partition was made with, in its file's metadata."""


class WarehouseError(RuntimeError):
    """A staged file or the database cannot be read or written; the message names it and what to do."""


def partition_file(staging: Path, table: str, group: str, model: str | None = None, part: str = "data") -> Path:
    """``staging/<table>/[model=<m>/]group=<g>/<part>.parquet``."""
    folder = staging / table
    if model is not None:
        folder = folder / f"model={check_key(model, 'model')}"
    return folder / f"group={check_key(group, 'group')}" / f"{check_key(part, 'part')}.parquet"


def write_partition(df: pd.DataFrame, path: Path, settings: dict | None = None) -> Path:
    """Write ``df`` to ``path`` atomically: a crash mid-write leaves the previous file as it was.

    ``settings``: what the partition was made with (kept in the file's metadata, see ``stored``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if settings is not None:
        df = df.copy()
        df.attrs[SETTINGS] = settings
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def stored(path: Path, key: str = "qos_settings") -> dict:
    """A dict kept in a staged file's metadata under ``key`` (pandas keeps ``DataFrame.attrs`` there), or
    {} when the file is missing, older or unreadable (then nothing is reused from it)."""
    if not path.is_file():
        return {}
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta.get(b"PANDAS_ATTRS", b"{}")).get(key, {})
    except Exception:  # pyarrow and json raise several types for a damaged file
        return {}


def read_partition(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise WarehouseError(f"{what} has not been materialized yet ({path} is missing): materialize it first")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for truncated/corrupt files
        raise WarehouseError(
            f"{what}: staged file {path} cannot be read ({exc}); re-materialize that partition to rewrite it"
        ) from exc
