"""COMMENT ON every table, view and column of a build, from the declarations (``qos_pipeline.tables``): each
table's grain as its comment, and one note per column (the shared note of its name unless the declaration
gives its own). Read back with duckdb_tables(), duckdb_views(), duckdb_columns()."""

from __future__ import annotations

from qos_pipeline import tables


def comment_tables(con) -> int:
    """Comment every table and view of the build's main schema and their columns. Returns how many column
    comments were set."""
    kinds = dict(con.execute("""
        SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary
          AND database_name = current_database()
        UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal
          AND database_name = current_database()""").fetchall())
    present: dict[str, tuple[str, list[str]]] = {name: (what, []) for name, what in kinds.items()}
    for name, column in con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' "
                                    "AND database_name = current_database() ORDER BY table_name, column_index"
                                    ).fetchall():
        if name in present:
            present[name][1].append(column)
    statements = list(tables.comment_statements(present))
    # one transaction: a commit per comment would cost a WAL write each (seconds for ~400 of them)
    con.execute("BEGIN TRANSACTION;\n" + "\n".join(statements) + "\nCOMMIT;")
    return sum(s.startswith("COMMENT ON COLUMN") for s in statements)
