"""Every stored table and view of the warehouse, declared once.

A declaration (``Table``) names the table, its grain (the table's COMMENT), its columns (type, NOT NULL,
note), its key, where its staged files lie (``Layout``) and what produces it (a statistic function, a SQL
file or a view's SELECT). Everything else is derived from the declarations:

- the DuckDB DDL (``ddl``) and the ``COMMENT ON`` of every table, view and column (``comment_statements``);
- the key checked before loading (``key_of``) and the staged layouts (``layouts``, read by ``staging``);
- the metric-table list whose row counts a build reports (``metric_tables``);
- the statistics a build runs, in declaration order (``statistics``), and the modules whose source marks
  the tables stale (``producer_modules``, read by ``metrics.step.code_version``);
- the column schema shown in the UI (``defs.checks.column_schema``, from ``note_of``).

Every asset check (name, asset, description, blocking) is declared once in ``tables/checks.py``; the
Dagster check specs are derived from it (``defs.checks.specs``).

Adding a statistics table is one ``declare(Table(..., producer=fn))`` next to ``fn`` (see
``metrics/declared.py``); nothing else is edited. Column notes shared by every table that has a column of
that name are in ``tables/notes.py``; a column's own ``note`` overrides it.
"""

from qos_pipeline.tables import staged  # noqa: F401  (declares the staged tables)
from qos_pipeline.tables.schema import (
    BOOTSTRAP,
    BUILD,
    CELL_COLUMNS,
    CELL_KEYS,
    PAIR,
    Check,
    Column,
    Layout,
    Table,
    columns,
    comment_statements,
    ddl,
    declare,
    declared,
    forget,
    key_of,
    layouts,
    metric_tables,
    note_of,
    producer_modules,
    statistics,
    table,
)

__all__ = ["BOOTSTRAP", "BUILD", "CELL_COLUMNS", "CELL_KEYS", "PAIR", "Check", "Column", "Layout", "Table",
           "columns", "comment_statements", "ddl", "declare", "declared", "forget",
           "key_of", "layouts", "metric_tables", "note_of", "producer_modules", "statistics", "table"]
