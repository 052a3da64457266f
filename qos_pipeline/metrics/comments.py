"""COMMENT ON every table, view and column of a build, from ``sql/comments.sql``: the tables' grain and
keys as table comments, and one note per column name (the same meaning in every table that has it)."""

from __future__ import annotations

from pathlib import Path

SQL = Path(__file__).resolve().parent / "sql" / "comments.sql"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_tables(con) -> int:
    """Run comments.sql, then comment every column of a table or view whose name has a note. Returns how
    many column comments were set."""
    con.execute(SQL.read_text(encoding="utf-8"))
    rows = con.execute("""
        SELECT c.table_name, c.column_name, n.note
        FROM duckdb_columns() c JOIN column_notes n USING (column_name)
        WHERE c.schema_name = 'main' AND c.database_name = current_database()""").fetchall()
    statements = [f'COMMENT ON COLUMN "{table}"."{column}" IS {_quote(note)};' for table, column, note in rows]
    # one transaction: a commit per comment would cost a WAL write each (seconds for ~400 of them)
    con.execute("BEGIN TRANSACTION;\n" + "\n".join(statements) + "\nDROP TABLE column_notes;\nCOMMIT;")
    return len(rows)
