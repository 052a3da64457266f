"""The declarations of stored tables and what is derived from them (the package docstring says what)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from qos_pipeline.tables.notes import NOTES

CELL_KEYS = ["model_key", "model_version", "prompt_format", "gen_config_hash", "design", "judge_id"]
"""A metric cell: rates are computed within one, and groups are compared only within one."""
PAIR = tuple(f"{k}_{side}" for side in "ab" for k in ("model_key", "model_version", "gen_config_hash", "design"))
"""The two cells of a comparison of models (or checkpoints) sharing prompt format and judge."""
TYPES = ("VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMPTZ")
Kind = Literal["staged", "statistic", "sql", "view", "taxonomy"]


@dataclass(frozen=True)
class Column:
    """One column: DuckDB type, NOT NULL when ``required``, and its note (None: the shared note of its name)."""

    name: str
    type: str
    required: bool = False
    note: str | None = None

    def sql(self) -> str:
        """The column as it stands in a CREATE TABLE."""
        return f"{self.name} {self.type}" + (" NOT NULL" if self.required else "")


def columns(spec: str, **notes: str) -> tuple[Column, ...]:
    """Columns from ``"name TYPE [NOT NULL], ..."`` (the syntax of a CREATE TABLE, checked here: an unknown
    type or a malformed entry raises naming it); ``notes``: a column's own note, by column name."""
    out = []
    for entry in (e.strip() for e in spec.split(",")):
        match = re.fullmatch(r"([a-z_][a-z0-9_]*)\s+([A-Z]+)(\s+NOT NULL)?", entry)
        if not match or match.group(2) not in TYPES:
            raise ValueError(f"column declaration {entry!r} is not 'name TYPE [NOT NULL]' with a type of {TYPES}")
        out.append(Column(match.group(1), match.group(2), bool(match.group(3)), notes.pop(match.group(1), None)))
    if notes:
        raise ValueError(f"notes for undeclared column(s) {sorted(notes)}")
    return tuple(out)


CELL_COLUMNS = columns(", ".join(f"{key} VARCHAR NOT NULL" for key in CELL_KEYS))
"""The key columns of a metric cell, first in every per-cell table."""
BOOTSTRAP = columns("boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL")
"""Appended to a statistic's columns when it resamples (``Table.bootstrap``), filled by the build."""
BUILD = columns("build_id VARCHAR, built_at TIMESTAMPTZ")
"""Appended to every statistic's columns: the build that computed the row."""


@dataclass(frozen=True)
class Check:
    """An asset check: its name (unique), what it checks (the UI's description), and whether a failure
    stops the step (blocking) or only warns."""

    name: str
    description: str
    blocking: bool = True


@dataclass(frozen=True)
class Layout:
    """Where a table's staged files may be: ``folders`` (``<dim>=<key>`` levels under ``staging/<table>/``)
    and the file name: ``file`` (``data``) or, when None, any key (then the file's stem is a dimension too,
    named ``stem``). ``columns``: the dimension -> the column every row of the file must hold it in."""

    folders: tuple[str, ...]
    file: str | None
    stem: str | None = None
    columns: tuple[tuple[str, str], ...] = ()

    def pattern(self, table: str) -> str:
        """The staged path of one file of ``table``, with placeholders."""
        name = f"{self.file}.parquet" if self.file else f"<{self.stem}>.parquet"
        return "/".join([table, *(f"{d}=<{d}>" for d in self.folders), name])


@dataclass(frozen=True)
class Table:
    """One stored table or view (see the module docstring). ``kind``: staged (loaded from Parquet, with a
    ``layout``), statistic (``producer(context) -> DataFrame`` per build; ``BUILD`` columns added,
    ``BOOTSTRAP`` too when ``bootstrap``),
    sql (``sql`` names the file under metrics/sql that creates it), view (``sql`` is its SELECT), taxonomy.
    A label-rate table applies one statistic (each label's rate with its intervals) per ``grouped_by``
    (the keys its intervals are joined on) with ``carried`` columns beside them; ``pooled`` adds the
    rows of every group together (name_group 'all'). ``after``: tables it reads that the build makes (a
    view with none is created as soon as the staged tables are loaded)."""

    name: str
    grain: str
    kind: Kind
    columns: tuple[Column, ...] = ()
    key: tuple[str, ...] = ()
    layout: Layout | None = None
    producer: Callable[[Any], Any] | None = None
    sql: str | None = None
    asset: str = "metric_tables"
    after: tuple[str, ...] = ()
    bootstrap: bool = True
    grouped_by: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()
    pooled: bool = False

    def all_columns(self) -> tuple[Column, ...]:
        """The declared columns, with the provenance columns of a statistic."""
        if self.kind != "statistic":
            return self.columns
        return self.columns + (BOOTSTRAP if self.bootstrap else ()) + BUILD


_REGISTRY: dict[str, Table] = {}


def declare(*tables: Table) -> None:
    """Register ``tables``; a name declared twice, a statistic without a producer, a key column that is not
    a declared column, or a column without a note raises naming it."""
    for table in tables:
        if table.name in _REGISTRY and _REGISTRY[table.name] != table:
            raise ValueError(f"table {table.name!r} is declared twice")
        if table.kind == "statistic" and table.producer is None:
            raise ValueError(f"statistic table {table.name!r} has no producer")
        names = [c.name for c in table.all_columns()]
        if table.columns and (set(table.key) - set(names)):
            raise ValueError(f"table {table.name!r}: key column(s) {sorted(set(table.key) - set(names))} undeclared")
        silent = [c.name for c in table.all_columns() if c.note is None and c.name not in NOTES]
        if silent:
            raise ValueError(f"table {table.name!r}: column(s) {silent} have no note (give note=, or add one "
                             "to tables/notes.py)")
        _REGISTRY[table.name] = table


def forget(name: str) -> None:
    """Remove a declaration (tests that declare a temporary table)."""
    _REGISTRY.pop(name, None)


def declared(kind: Kind | None = None) -> list[Table]:
    """Every declaration (of ``kind``), in declaration order."""
    return [t for t in _REGISTRY.values() if kind is None or t.kind == kind]


def table(name: str) -> Table:
    """The declaration of ``name`` (KeyError naming it when there is none)."""
    if name not in _REGISTRY:
        raise KeyError(f"no table {name!r} is declared (qos_pipeline/tables)")
    return _REGISTRY[name]


def ddl(t: Table) -> str:
    """CREATE TABLE (or VIEW) of a declaration; '' for a table its SQL file creates."""
    if t.kind == "view":
        return f"CREATE VIEW {t.name} AS\n{t.sql};"
    if not t.columns:
        return ""
    return f"CREATE TABLE {t.name} (\n    " + ",\n    ".join(c.sql() for c in t.all_columns()) + "\n);"


def key_of(name: str) -> tuple[str, ...]:
    """The key of a loaded table: a row repeated under it stops the build."""
    return table(name).key


def layouts() -> dict[str, Layout]:
    """The staged tables' layouts, by table."""
    return {t.name: t.layout for t in declared("staged") if t.layout is not None}


def metric_tables() -> list[str]:
    """The tables a build computes (row counts reported, every one checked), in build order."""
    return [t.name for t in declared() if t.kind in ("statistic", "sql")]


def statistics() -> list[Table]:
    """The statistics a build runs: in declaration order, except that each comes after the statistics
    named in its ``after`` (whose frames it reads); a missing or circular ``after`` raises naming it."""
    pending = {t.name: t for t in declared("statistic")}
    done: list[Table] = []
    while pending:
        ready = [t for t in pending.values() if all(a not in pending for a in t.after)]
        if not ready:
            raise ValueError(f"statistics {sorted(pending)} wait on each other (their after= is circular)")
        done.append(ready[0])
        del pending[ready[0].name]
    return done


def producer_modules() -> list[str]:
    """Modules whose source the statistics come from: an edit to one marks the metric tables stale."""
    return sorted({t.producer.__module__ for t in statistics() if t.producer is not None})


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def note_of(table_name: str, column: str) -> str | None:
    """A column's note: its own in the declaration, else the shared note of the name."""
    t = _REGISTRY.get(table_name)
    own = {c.name: c.note for c in t.all_columns()} if t else {}
    return own.get(column) or NOTES.get(column)


def comment_statements(present: dict[str, tuple[str, list[str]]]) -> Iterator[str]:
    """COMMENT ON statements for the tables and views ``present`` in a database (name -> (TABLE or VIEW,
    its columns)): each declared one's grain, and every column with a note."""
    for name, (what, cols) in sorted(present.items()):
        t = _REGISTRY.get(name)
        if t is not None:
            yield f"COMMENT ON {what} {name} IS {_quote(t.grain)};"
        for column in cols:
            note = note_of(name, column)
            if note:
                yield f'COMMENT ON COLUMN "{name}"."{column}" IS {_quote(note)};'

