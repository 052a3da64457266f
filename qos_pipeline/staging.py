"""Staged Parquet partitions: where each partition's file lives, atomic writes, named read errors, the
layout the loader accepts, and the warehouse's writer lock.

Writers never share DuckDB's single write lock: each partition is staged as one Parquet file (written to a
temporary name, then renamed, so a killed step leaves the previous file intact). Re-running a partition
replaces its file, so rows are never duplicated. A file anywhere else under a table's folder (a copy, a
backup) is refused by name, never loaded as more rows. Writes to ``staging/`` and the build that publishes
the database hold one cross-process lock (``writer_lock``); readers never take it. Pure: no dagster, no duckdb.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import pandas as pd

from qos_pipeline import journal
from qos_pipeline.provenance import check_key
from qos_pipeline.tables import Layout, layouts

log = logging.getLogger("qos_pipeline.staging")

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
    """A staged partition; a clear error naming ``what`` when it is missing or unreadable."""
    if not path.is_file():
        raise WarehouseError(f"{what} has not been materialized yet ({path} is missing): materialize it first")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for truncated/corrupt files
        raise WarehouseError(
            f"{what}: staged file {path} cannot be read ({exc}); re-materialize that partition to rewrite it"
        ) from exc


LAYOUTS: dict[str, Layout] = layouts()
"""The files each loaded table is made of, by construction (``partition_file``, ``evaluate.stage``): from
the tables' declarations (``qos_pipeline.tables``)."""


def is_temporary(path: Path) -> bool:
    """A file ``write_partition`` is writing (or was writing when killed): never a partition."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def staged_files(staging: Path, table: str) -> list[tuple[Path, dict[str, str]]]:
    """Every staged file of ``table`` with the keys its place names (``{"group": "white", ...}``), sorted.

    Only the files the layout names are partitions: anything else under ``staging/<table>/`` (a copy such as
    ``data-copy.parquet``, a backup, a stray folder) raises WarehouseError naming it, because loading it
    would count its rows twice. Temporary files of writes in flight are skipped. A model key with an
    uncommitted ingest (``journal``) contributes its previous files instead of those being written."""
    found = _listed(staging, table, staging / table)
    instead = journal.loaded_instead(staging, table) if "model" in LAYOUTS[table].folders else {}
    if not instead:
        return found
    found = [(path, keys) for path, keys in found if keys["model"] not in instead]
    for model, root in instead.items():
        if root is not None:
            found += [(path, keys) for path, keys in _listed(staging, table, root) if keys["model"] == model]
    return sorted(found)


def _listed(staging: Path, table: str, root: Path) -> list[tuple[Path, dict[str, str]]]:
    layout = LAYOUTS[table]
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_dir() or is_temporary(path):
            continue
        keys = _keys_of(path.relative_to(root).parts, layout)
        if keys is None:
            raise WarehouseError(
                f"unexpected file {path} in the staged {table}: a partition is only {layout.pattern(table)}, so "
                f"this copy or stray file would be loaded as more rows; move it out of {staging} (then rebuild)")
        found.append((path, keys))
    return found


def _keys_of(parts: tuple[str, ...], layout: Layout) -> dict[str, str] | None:
    if len(parts) != len(layout.folders) + 1 or not parts[-1].endswith(".parquet"):
        return None
    keys = {}
    for part, dim in zip(parts, layout.folders):
        prefix, _, key = part.partition("=")
        if prefix != dim or not _valid(key):
            return None
        keys[dim] = key
    stem = parts[-1][: -len(".parquet")]
    if layout.file is not None:
        return keys if stem == layout.file else None
    if not _valid(stem):
        return None
    return {**keys, cast(str, layout.stem): stem}  # a layout without a fixed file names its stem


def _valid(key: str) -> bool:
    try:
        check_key(key, "key")
    except ValueError:
        return False
    return True


LOCK_NAME = ".writer.lock"
_HELD: dict[str, tuple[int, int, int]] = {}  # lock file -> (pid, fd, depth): this process holds it


DISK_FULL = ("the disk is full (No space left on device); free space there and run the command again: the staged "
             "partitions are intact and the published warehouse is unchanged")


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` or what caused it is a full disk (ENOSPC), whichever library raised it."""
    while exc is not None:
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class WarehouseBusy(WarehouseError):
    """Another process holds the writer lock and this caller would rather not wait (a sensor tick)."""


def lock_file(staging: Path) -> Path:
    """The writer lock of the warehouse whose partitions are staged in ``staging`` (never deleted: removing
    a lock file that another process has open would let two writers in)."""
    return Path(staging) / LOCK_NAME


def lock_holder(staging: Path) -> str:
    """Who holds (or last held) the writer lock, as it wrote itself into the file: pid, what, since when."""
    try:
        return lock_file(staging).read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def writer_lock(staging: Path, what: str, wait: bool = True, notify: Callable[[str], None] | None = None,
                every_s: float = 30.0) -> Iterator[None]:
    """Hold the warehouse's writer lock (``fcntl.flock`` on ``staging/.writer.lock``) for staging writes and
    the build -> publish of the database, across processes: CLI commands, Dagster steps, sensors. Re-entrant
    within a process (a CLI command holds it around the Dagster steps it runs in-process). While another
    process holds it, ``notify`` (default: stderr) says who, every ``every_s`` seconds; ``wait`` False raises
    WarehouseBusy instead. Readers of qos.duckdb never take it."""
    path = lock_file(staging)
    key = str(path.resolve())
    held = _HELD.get(key)
    if held and held[0] == os.getpid():
        _HELD[key] = (held[0], held[1], held[2] + 1)
        try:
            yield
        finally:
            _HELD[key] = (held[0], held[1], _HELD[key][2] - 1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)  # never for other users: an open fd can hold the lock
    try:
        _acquire(fd, staging, what, wait, notify or _say, every_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({what}) since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        _HELD[key] = (os.getpid(), fd, 1)
        try:
            yield
        finally:
            _HELD.pop(key, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, staging: Path, what: str, wait: bool, notify: Callable[[str], None], every_s: float) -> None:
    started = last = time.monotonic()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        holder = lock_holder(staging)
    if not wait:
        raise WarehouseBusy(f"the warehouse {staging.parent} is being written by {holder}; {what} will retry later")
    notify(f"{what}: waiting for the warehouse writer lock {lock_file(staging)}, held by {holder} "
           "(another ingest, run or rebuild of this warehouse); it continues by itself when that one finishes")
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            log.info("%s: got the warehouse writer lock after %.0f s", what, time.monotonic() - started)
            return
        except BlockingIOError:
            time.sleep(0.1)
        if time.monotonic() - last >= every_s:
            last = time.monotonic()
            notify(f"{what}: still waiting for the warehouse writer lock ({last - started:.0f} s), held by "
                   f"{lock_holder(staging)}")
