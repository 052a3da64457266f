"""The DuckDB warehouse, built from the staged Parquet partitions.

``build_database`` loads every staged file into a *new* DuckDB file and computes the metric tables from
the SQL in ``metrics/sql/`` (package data, so a non-editable install carries it); ``publish`` swaps the
finished file in atomically, so analysts reading the old file are undisturbed and never see half a build.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path


from qos_pipeline.metrics.comments import comment_tables
from qos_pipeline.metrics.analysis import StatsSettings, add_statistics
from qos_pipeline.taxonomy import ALL_LABELS, REFUSAL_LABELS
from qos_pipeline.staging import WarehouseError
from qos_pipeline.provenance import check_key

SQL_DIR = Path(__file__).resolve().parent / "sql"
CELL = ["model_key", "model_version", "prompt_format", "gen_config_hash", "design", "judge_id"]
"""A metric cell: rates are computed within one, and groups are compared only within one."""
BASE_TABLES = ("prompts", "generations", "judgments")

# label_rates_* tables: name -> (extra key columns, pooled): pooled tables add rows with name_group 'all'.
LABEL_RATE_TABLES: dict[str, tuple[list[str], bool]] = {
    "label_rates_model": ([], False),
    "label_rates_group": (["name_group"], False),
    "label_rates_name": (["name_group", "name", "gender", "popularity"], False),
    "label_rates_popularity": (["name_group", "popularity"], True),
    "label_rates_gender": (["name_group", "gender"], True),
    "label_rates_template": (["template_id", "template_name", "target_group", "template_text"], False),
}
METRIC_TABLES = (*LABEL_RATE_TABLES, "disparities", "group_comparisons", "name_sensitivity", "model_comparisons")
# the columns the bootstrap intervals of each label_rates_* table are joined on (besides cell and label)
INTERVAL_KEYS = {"label_rates_model": [], "label_rates_group": ["name_group"],
                 "label_rates_name": ["name_group", "name"], "label_rates_popularity": ["name_group", "popularity"],
                 "label_rates_gender": ["name_group", "gender"], "label_rates_template": ["template_id"]}


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def _load_base_table(con, staging: Path, table: str, fix: str = "re-materialize its partition") -> int:
    """Load every staged file of ``table``; a broken file is named, with ``fix`` saying what to do."""
    files = sorted((staging / table).rglob("*.parquet"))
    required = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = ? AND is_nullable = 'NO'", [table]).fetchall()}
    for f in files:  # name the broken file instead of failing on a glob
        try:
            columns = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(f)]).fetchall()}
        except Exception as exc:
            raise WarehouseError(f"staged file {f} is unreadable ({exc}); {fix}") from exc
        if required - columns:
            raise WarehouseError(f"staged file {f} lacks column(s) {sorted(required - columns)}: it was written by an "
                                 f"older qos-pipeline or another tool; {fix}")
    if files:
        # hive_partitioning off: the model=/group= folders are already columns inside each file.
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM "
                        "read_parquet(?, union_by_name = true, hive_partitioning = false)", [[str(f) for f in files]])
        except Exception as exc:  # e.g. a file staged by an older version with other columns
            raise WarehouseError(f"staged {table} files cannot be loaded ({exc}); {fix}") from exc
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _label_rates_sql(table: str, dims: list[str], pooled: bool) -> str:
    source = "SELECT * FROM judged"
    if pooled:
        source += " UNION ALL BY NAME SELECT * REPLACE ('all' AS name_group) FROM judged"
    template = _sql("label_rates.sql")
    return template.format(table=table, source=source, cell=", ".join(CELL), dims="".join(f", {d}" for d in dims))


def build_database(staging: Path, target: Path, reference_group: str, stats: StatsSettings = StatsSettings()
                   ) -> dict[str, int]:
    """Build a complete warehouse at ``target`` (a new file) from the staged partitions.

    Returns the row count of every table. ``target`` must not exist; ``publish`` moves it into place.
    """
    import duckdb

    check_key(reference_group, "reference group")
    if target.exists():
        raise WarehouseError(f"{target} already exists; remove the stale temporary build")
    con = duckdb.connect(str(target))
    try:
        con.execute("SET VARIABLE reference_group = ?", [reference_group])
        con.execute("SET VARIABLE build_id = ?", [uuid.uuid4().hex[:12]])
        con.execute("SET VARIABLE built_at = ?", [datetime.now(timezone.utc).isoformat()])
        con.execute(_sql("schema.sql"))
        con.execute("CREATE TABLE labels AS SELECT unnest(?) AS label, generate_subscripts(?, 1) AS ordinal",
                    [list(ALL_LABELS), list(ALL_LABELS)])
        con.execute("ALTER TABLE labels ADD COLUMN is_refusal BOOLEAN")
        con.execute("UPDATE labels SET is_refusal = label IN (SELECT unnest(?))", [list(REFUSAL_LABELS)])
        counts = {t: _load_base_table(con, staging, t) for t in BASE_TABLES}
        con.execute(_sql("views.sql"))
        for table, (dims, pooled) in LABEL_RATE_TABLES.items():
            con.execute(_label_rates_sql(table, dims, pooled))
        con.execute(_sql("disparities.sql"))
        counts.update(build_judge_tables(con, staging))
        con.execute(_sql("statistics.sql"))
        add_statistics(con, CELL, INTERVAL_KEYS, reference_group, stats)
        counts["refusal_rates_corrected"] = con.execute("SELECT count(*) FROM refusal_rates_corrected").fetchone()[0]
        for table in METRIC_TABLES:
            counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        comment_tables(con)  # grain, keys and columns: readable with duckdb_tables() / duckdb_columns()
        con.execute("CHECKPOINT")
        return counts
    except Exception:
        con.close()
        target.unlink(missing_ok=True)
        raise
    finally:
        con.close()


JUDGE_TABLES = ("judge_validations", "judge_validation_labels", "judge_validation_confusion")


def build_judge_tables(con, staging: Path) -> dict[str, int]:
    """Judge validations staged under ``staging/judge_validation*/`` (``qos judge validate`` and the
    ``judge_validations`` asset). Returns row counts."""
    con.execute(_sql("judge_validations.sql"))
    for table in JUDGE_TABLES:
        _load_base_table(con, staging, table, "re-run `qos judge validate`")
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in JUDGE_TABLES}


def temp_build_path(db: Path) -> Path:
    return db.with_name(f".{db.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.building")


def publish(built: Path, db: Path) -> None:
    """Swap a finished build into place (atomic rename: readers see the old or the new file, never half)."""
    os.replace(built, db)
    Path(str(built) + ".wal").unlink(missing_ok=True)


def connect_readonly(db: Path):
    import duckdb

    if not db.is_file():
        raise WarehouseError(f"{db} does not exist yet: run `qos run` (or `qos ingest`) first")
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseError(f"{db} cannot be opened ({exc}); rebuild it with `qos rebuild`") from exc
