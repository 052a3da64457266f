"""Publishing a build and reading the published warehouse: where a build is written before it is swapped in,
the atomic swap (readers see the old or the new file, never half), what killed builds leave behind, and the
read-only connection every reader uses."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from qos_pipeline.staging import WarehouseError

log = logging.getLogger("qos_pipeline.metrics")


def temp_build_path(db: Path) -> Path:
    """Where a build is written before ``publish``: hidden, beside ``db``, named after the building process."""
    return db.with_name(f".{db.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.building")


def _wal(path: Path) -> Path:
    return Path(str(path) + ".wal")


def remove(path: Path) -> None:
    """Delete a database file and its write-ahead log, if present."""
    path.unlink(missing_ok=True)
    _wal(path).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_leftovers(db: Path) -> list[Path]:
    """Delete what killed builds left beside ``db``: their ``.building`` files (full-size copies of the
    warehouse) whose process is gone, and a WAL beside ``db`` that stops it from opening. Our builds never
    write to ``db`` itself (they write a new file and swap it in), so such a WAL is never ours to keep.
    Returns the files removed."""
    removed = []
    for f in sorted(db.parent.glob(f".{db.name}.*.building")):
        pid = f.name[len(db.name) + 2:].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            remove(f)
            removed.append(f)
    if _wal(db).exists() and db.exists() and not _readable(db):
        _wal(db).unlink(missing_ok=True)
        removed.append(_wal(db))
    for f in removed:
        log.warning("removed %s, left by an earlier build that did not finish", f)
    return removed


def _readable(db: Path) -> bool:
    import duckdb

    try:
        with duckdb.connect(str(db), read_only=True) as con:
            con.execute("SELECT count(*) FROM information_schema.tables").fetchone()
        return True
    except duckdb.Error:
        return False


def publish(built: Path, db: Path) -> None:
    """Swap a finished build into place (atomic rename: readers see the old or the new file, never half).

    A WAL beside ``db`` belongs to the file being replaced (a build is checkpointed and has none): DuckDB
    would replay it against the new file and refuse to open it, so it goes, before and after the swap. The
    published file is then opened once, so a publish never leaves an unreadable warehouse unnoticed."""
    _wal(db).unlink(missing_ok=True)
    os.replace(built, db)
    _wal(db).unlink(missing_ok=True)
    _wal(built).unlink(missing_ok=True)
    if not _readable(db):
        raise WarehouseError(f"{db} was published but cannot be opened; run `qos rebuild` and report this")


def connect_readonly(db: Path):
    """A read-only connection to ``db``; a clear error when it does not exist."""
    import duckdb

    if not db.is_file():
        raise WarehouseError(f"{db} does not exist yet: run `qos run` (or `qos ingest`) first")
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseError(f"{db} cannot be opened ({exc}); rebuild it with `qos rebuild`") from exc
