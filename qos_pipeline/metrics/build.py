"""The DuckDB warehouse, built from the staged Parquet partitions.

``build_database`` loads every staged file into a *new* DuckDB file and computes the metric tables from
the SQL in ``metrics/sql/`` (package data, so a non-editable install carries it); ``publish`` swaps the
finished file in atomically, so analysts reading the old file are undisturbed and never see half a build.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from qos_pipeline import tables
from qos_pipeline.metrics import declared, publish
from qos_pipeline.metrics.analysis import StatsSettings, add_statistics, register_risk_ratio
from qos_pipeline.metrics.comments import comment_tables
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import DISK_FULL, LAYOUTS, WarehouseError, disk_full, staged_files
from qos_pipeline.tables import CELL_KEYS, Table
from qos_pipeline.taxonomy import ALL_LABELS, REFUSAL_LABELS

log = logging.getLogger("qos_pipeline.metrics")
SQL_DIR = Path(__file__).resolve().parent / "sql"
LABEL_RATES_SQL = "label_rates.sql"
VALIDATION_ASSET = "judge_validations"
assert declared.STATISTICS_MODULES  # the metric tables are declared on import of metrics.declared
MEMORY_ENV = "QOS_DUCKDB_MEMORY"
DEFAULT_MEMORY = "400MB"
"""DuckDB's memory limit while building (``QOS_DUCKDB_MEMORY``, e.g. ``2GB``): beyond it joins, sorts and
aggregates spill to ``<build file>.tmp/``, so a build's memory does not grow with the number of rows."""


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def label_rate_tables() -> list[Table]:
    """The declared ``label_rates_*`` tables (one statistic applied per their dimensions)."""
    return [t for t in tables.declared("sql") if t.sql == LABEL_RATES_SQL]



def _load_base_table(con, staging: Path, table: str, fix: str = "re-materialize its partition") -> int:
    """Load exactly the staged files of ``table`` (``staging.staged_files``: a stray file is refused by
    name); a file of another schema, a file whose rows belong elsewhere and a repeated key are named,
    with ``fix`` saying what to do. Nothing is published after any of these."""
    staged = staged_files(staging, table)
    files = [str(f) for f, _ in staged]
    required = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = ? AND is_nullable = 'NO'", [table]).fetchall()}
    for f, _ in staged:  # name the broken file instead of failing on a glob
        try:
            columns = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(f)]).fetchall()}
        except Exception as exc:
            raise WarehouseError(f"staged file {f} is unreadable ({exc}); {fix}") from exc
        if required - columns:
            raise WarehouseError(f"staged file {f} lacks column(s) {sorted(required - columns)}: it was written by an "
                                 f"older qos-pipeline or another tool; {fix}")
    if not files:
        return 0
    _check_places(con, table, staged)
    _check_unique(con, table, files)
    try:  # hive_partitioning off: the model=/group= folders are already columns inside each file.
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM "
                    "read_parquet(?, union_by_name = true, hive_partitioning = false)", [files])
    except Exception as exc:  # e.g. a file of another schema: name it (a full disk is no file's fault)
        if disk_full(exc):
            raise WarehouseError(f"loading the staged {table}: {DISK_FULL}") from exc
        raise WarehouseError(f"{_culprit(con, table, files) or f'staged {table} files'} cannot be loaded "
                             f"({exc}); {fix}") from exc
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


_READ = "read_parquet(?, union_by_name = true, hive_partitioning = false, filename = true)"
"""The staged files given as the one parameter, each row with the file it came from."""


def _check_places(con, table: str, staged: list[tuple[Path, dict[str, str]]]) -> None:
    """Every row of a file holds the keys of its place (``model=m/group=g``, a judge file's name): a file
    copied or moved into another partition's place is refused rather than counted there."""
    dims = dict(LAYOUTS[table].columns)
    cols = ", ".join(dims.values())
    found = con.execute(f"SELECT filename, {cols} FROM {_READ} GROUP BY ALL ORDER BY ALL",
                        [[str(f) for f, _ in staged]]).fetchall()
    expected = {str(f): keys for f, keys in staged}
    for filename, *values in found:
        for (dim, column), value in zip(dims.items(), values):
            if value != expected[filename][dim]:
                raise WarehouseError(
                    f"staged file {filename} holds rows with {column}={value!r}, but its place says "
                    f"{expected[filename][dim]!r}: it was copied or moved there by hand; remove it "
                    f"(or move it back), then rebuild")


def _check_unique(con, table: str, files: list[str]) -> None:
    """Blocking: no key of ``table`` twice, before anything is loaded (the files holding it are named)."""
    key = tables.key_of(table)
    keys = ", ".join(key)
    dup = con.execute(f"SELECT {keys}, count(*), list(DISTINCT filename ORDER BY filename) FROM {_READ} "
                      f"GROUP BY {keys} HAVING count(*) > 1 ORDER BY ALL LIMIT 3", [files]).fetchall()
    if dup:
        n = len(key)
        examples = "; ".join(f"{dict(zip(key, row[:n]))} x{row[n]} in {', '.join(row[n + 1])}"
                             for row in dup)
        raise WarehouseError(f"{table}: key ({keys}) is not unique, e.g. {examples}; the same rows are staged twice: "
                             "remove the copy, or re-materialize the partition, then rebuild")


def _culprit(con, table: str, files: list[str]) -> str | None:
    """The first staged file that cannot be inserted into ``table`` on its own (named in the error)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _probe AS SELECT * FROM {table} LIMIT 0")
    try:
        for f in files:
            try:
                con.execute("INSERT INTO _probe BY NAME SELECT * FROM read_parquet(?, hive_partitioning = false)", [f])
            except Exception:
                return f"staged file {f}"
            con.execute("DELETE FROM _probe")
    finally:
        con.execute("DROP TABLE IF EXISTS _probe")
    return None


JUDGED_CELLS = "judged_cells"
"""A temporary table of the build: the ``judged`` view's columns that metrics group by, joined once
(every label_rates_* table and the statistics read it instead of re-joining 1M x 1M rows each)."""


def _label_rates_sql(table: Table) -> str:
    source = f"SELECT * FROM {JUDGED_CELLS}"
    if table.pooled:
        source += f" UNION ALL BY NAME SELECT * REPLACE ('all' AS name_group) FROM {JUDGED_CELLS}"
    dims = "".join(f", {d}" for d in table.grouped_by + table.carried)
    return _sql(LABEL_RATES_SQL).format(table=table.name, source=source, cell=", ".join(CELL_KEYS), dims=dims)


def build_database(staging: Path, target: Path, reference_group: str, stats: StatsSettings = StatsSettings(),
                   lineage: pd.DataFrame | None = None) -> dict[str, int]:
    """Build a complete warehouse at ``target`` (a new file) from the staged partitions; ``lineage``: the
    checkpoints' families and steps (``generation.models.lineage.frame``), None: no checkpoint family.

    Returns the row count of every table. ``target`` must not exist; ``publish`` moves it into place.
    """
    import duckdb

    check_key(reference_group, "reference group")
    if target.exists():
        raise WarehouseError(f"{target} already exists; remove the stale temporary build")
    con = duckdb.connect(str(target))
    try:
        con.execute(f"SET memory_limit = '{memory_limit()}'")
        con.execute("SET VARIABLE reference_group = ?", [reference_group])
        con.execute("SET VARIABLE build_id = ?", [uuid.uuid4().hex[:12]])
        con.execute("SET VARIABLE built_at = ?", [datetime.now(UTC).isoformat()])
        con.execute(_sql("macros.sql"))
        register_risk_ratio(con)
        for table in tables.declared():
            if table.kind != "view":
                con.execute(tables.ddl(table))
        con.execute("INSERT INTO labels SELECT unnest(?), generate_subscripts(?, 1), unnest(?)",
                    [list(ALL_LABELS), list(ALL_LABELS), [label in REFUSAL_LABELS for label in ALL_LABELS]])
        counts = {t.name: _load_base_table(con, staging, t.name) for t in tables.declared("staged")
                  if t.asset != VALIDATION_ASSET}
        _create_views(con, made=False)
        con.execute(f"CREATE TEMP TABLE {JUDGED_CELLS} AS SELECT {', '.join(CELL_KEYS)}, template_id, template_name, "
                    "target_group, template_text, name_group, name, gender, popularity, label, generation_run_id, "
                    "judgment_run_id FROM judged")
        for table in tables.declared("sql"):
            con.execute(_label_rates_sql(table) if table.sql == LABEL_RATES_SQL else _sql(str(table.sql)))
        counts.update(build_judge_tables(con, staging))
        add_statistics(con, CELL_KEYS, label_rate_tables(), reference_group, stats, JUDGED_CELLS, lineage)
        _create_views(con, made=True)
        for name in tables.metric_tables():
            counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        comment_tables(con)  # grain, keys and columns: readable with duckdb_tables() / duckdb_columns()
        con.execute("CHECKPOINT")
        return counts
    except Exception:
        con.close()
        publish.remove(target)
        raise
    finally:
        con.close()


def _create_views(con, made: bool) -> None:
    """The declared views over the staged tables (``made`` False), or over the tables the build makes."""
    for view in tables.declared("view"):
        if bool(view.after) == made:
            con.execute(tables.ddl(view))


def memory_limit() -> str:
    """``QOS_DUCKDB_MEMORY`` if it reads as a size (``512MB``, ``2GB``, ``1.5GiB``), else an error naming it."""
    import re

    value = (os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, flags=re.IGNORECASE):
        raise WarehouseError(f"{MEMORY_ENV}={value!r} is not a size; give one such as 512MB or 2GB")
    return value


def build_judge_tables(con, staging: Path) -> dict[str, int]:
    """Judge validations staged under ``staging/judge_validation*/`` (``qos judge validate`` and the
    ``judge_validations`` asset), into their tables (created from the declarations). Returns row counts."""
    names = [t.name for t in tables.declared("staged") if t.asset == VALIDATION_ASSET]
    for name in names:
        _load_base_table(con, staging, name, "re-run `qos judge validate`")
    return {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in names}
