"""The statistics of a build, computed from the judged rows in one pass over the cells (``metrics.stats``).

Each statistics table is declared once (``metrics/declared.py``: columns, grain, producer); a producer is a
function of the build's ``Context`` returning the table's rows. ``Context.per_cell`` applies a per-cell
statistic to every cell and adds the cell's keys (the way inspect_ai's ``grouped()`` wraps a metric), so a
statistic is written once for one cell. The cells' bootstrap draws are made once and shared by every table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from qos_pipeline.metrics import labelled
from qos_pipeline.metrics.stats.cells import Cell, cells_from_db
from qos_pipeline.metrics.stats.compare import risk_ratio
from qos_pipeline.metrics.stats.draws import RESAMPLES, SEED
from qos_pipeline.metrics.stats.multiplicity import PRIMARY_MEASURE
from qos_pipeline.metrics.stats.rates import rate_intervals
from qos_pipeline.tables import Table, statistics

INTERVALS = ["ci_low", "ci_high", "ci_tn_low", "ci_tn_high"]


@dataclass(frozen=True)
class StatsSettings:
    """Bootstrap resamples and seed (stored with every table), the p-value adjustment and the primary
    measure (its gaps vs the reference group are the primary family; everything else is exploratory).
    ``resamples=0`` switches the statistics off (interval columns NULL, comparison tables empty): a baseline
    for benchmarks."""

    resamples: int = RESAMPLES
    seed: int = SEED
    p_adjust: str = "holm"
    primary_measure: str = PRIMARY_MEASURE


@dataclass
class Context:
    """What a statistic's producer gets: the build's connection, its cells (with their draws), the cell
    keys, the reference group and settings, the human-labelled counts, the checkpoints' lineage, and the
    frames of the statistics produced before it (``frames``, by table)."""

    con: Any
    cells: list[Cell]
    cell_keys: list[str]
    reference: str
    settings: StatsSettings
    counts: pd.DataFrame
    lineage: pd.DataFrame | None = None
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)

    def per_cell(self, make: Callable[[Cell], pd.DataFrame]) -> pd.DataFrame:
        """``make(cell)`` for every cell, each frame with the cell's keys, concatenated."""
        frames = [frame.assign(**dict(zip(self.cell_keys, cell.key)))
                  for cell in self.cells if len(frame := make(cell))]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def of(self, table: str, cell: Cell) -> pd.DataFrame:
        """The rows of an earlier statistic that belong to ``cell``."""
        frame = self.frames.get(table, pd.DataFrame())
        if frame.empty:
            return frame
        return frame[(frame[self.cell_keys] == pd.Series(dict(zip(self.cell_keys, cell.key)))).all(axis=1)]

    def shared(self, name: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per build: for two tables computed together (e.g. PPI rates and gaps)."""
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]


def register_risk_ratio(con) -> None:
    """``risk_ratio(k, n, k_ref, n_ref)`` in SQL is ``stats.compare.risk_ratio``: one definition of the ratio
    for ``disparities`` and ``group_comparisons`` (NULL in, NULL out)."""
    import pyarrow as pa
    from duckdb.sqltypes import DOUBLE

    def ratio(k, n, k_ref, n_ref):
        columns = (c.to_numpy(zero_copy_only=False) for c in (k, n, k_ref, n_ref))
        return pa.array(risk_ratio(*columns), from_pandas=True)

    con.create_function("risk_ratio", ratio, [DOUBLE] * 4, DOUBLE, type="arrow")


def _insert(con, table: Table, frame: pd.DataFrame, settings: StatsSettings) -> None:
    """Insert a producer's rows with the build's provenance (and the bootstrap's, if the table has it)."""
    if frame.empty:
        return
    if table.bootstrap:
        frame = frame.assign(boot_resamples=settings.resamples, boot_seed=settings.seed)
    con.register("stats_src", frame)
    con.execute(f"INSERT INTO {table.name} BY NAME SELECT *, getvariable('build_id') AS build_id, "
                "getvariable('built_at')::TIMESTAMPTZ AS built_at FROM stats_src ORDER BY ALL")
    con.unregister("stats_src")


def _add_intervals(con, table: Table, cell_keys: list[str], frame: pd.DataFrame, settings: StatsSettings) -> None:
    """Join the bootstrap columns onto a ``label_rates_*`` table built in SQL (rows without a draw: NULL)."""
    keys = cell_keys + list(table.grouped_by) + ["label"]
    if frame.empty:
        frame = pd.DataFrame(columns=keys + INTERVALS)
    con.register("intervals_src", frame[keys + INTERVALS])
    con.execute(f"CREATE OR REPLACE TABLE {table.name} AS SELECT r.*, {', '.join(f'b.{c}' for c in INTERVALS)}, "
                f"{settings.resamples} AS boot_resamples, {settings.seed} AS boot_seed "
                f"FROM {table.name} r LEFT JOIN intervals_src b USING ({', '.join(keys)}) ORDER BY ALL")
    con.unregister("intervals_src")


def add_statistics(con, cell_keys: list[str], label_rate_tables: list[Table], reference: str,
                   settings: StatsSettings, source: str = "judged", lineage: pd.DataFrame | None = None) -> None:
    """Add the bootstrap intervals to the ``label_rates_*`` tables, validate every cell's judge on the
    model's own human labels, then fill every declared statistic in declaration order (their tables must
    exist). ``source``: the judged rows (the view, or the build's materialized copy of its columns)."""
    cells = cells_from_db(con, cell_keys, source) if settings.resamples else []
    for cell in cells:
        cell.draw(settings.resamples, settings.seed)
    intervals = [rate_intervals(cell) for cell in cells]
    for table in label_rate_tables:
        parts = [frame[table.name].assign(**dict(zip(cell_keys, cell.key))) for cell, frame in zip(cells, intervals)]
        _add_intervals(con, table, cell_keys, pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(),
                       settings)
    counts = labelled.labelled_counts(con, cell_keys)
    labelled.add_validations(con, counts, cell_keys, reference, settings.resamples, settings.seed)
    ctx = Context(con, cells, cell_keys, reference, settings, counts, lineage)
    for table in statistics():
        assert table.producer is not None  # declare() refuses a statistic without one
        frame = table.producer(ctx)
        ctx.frames[table.name] = frame
        _insert(con, table, frame, settings)
