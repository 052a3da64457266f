"""The statistics of a build, computed from the judged rows in one pass over the cells (``metrics.stats``):
cluster-bootstrap intervals of every label rate, group comparisons, the mixed-model cross-check of the
primary gaps, name sensitivity, model and checkpoint comparisons and judge-corrected refusal rates. The draws of a
cell are made once and shared by all of its tables."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from qos_pipeline.metrics import labelled
from qos_pipeline.metrics.stats.cells import Cell, cells_from_db
from qos_pipeline.metrics.stats.checkpoints import checkpoint_changes
from qos_pipeline.metrics.stats.compare import group_comparisons, risk_ratio
from qos_pipeline.metrics.stats.corrected import corrected_rates
from qos_pipeline.metrics.stats.draws import RESAMPLES, SEED
from qos_pipeline.metrics.stats.mixed import agreement, group_effects
from qos_pipeline.metrics.stats.models import model_comparisons
from qos_pipeline.metrics.stats.multiplicity import PRIMARY_MEASURE
from qos_pipeline.metrics.stats.ppi import ppi_tables
from qos_pipeline.metrics.stats.rates import rate_intervals
from qos_pipeline.metrics.stats.sensitivity import name_sensitivity

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


def register_risk_ratio(con) -> None:
    """``risk_ratio(k, n, k_ref, n_ref)`` in SQL is ``stats.compare.risk_ratio``: one definition of the ratio
    for ``disparities`` and ``group_comparisons`` (NULL in, NULL out)."""
    import pyarrow as pa
    from duckdb.sqltypes import DOUBLE

    def ratio(k, n, k_ref, n_ref):
        columns = (c.to_numpy(zero_copy_only=False) for c in (k, n, k_ref, n_ref))
        return pa.array(risk_ratio(*columns), from_pandas=True)

    con.create_function("risk_ratio", ratio, [DOUBLE] * 4, DOUBLE, type="arrow")


def _cells(con, cell_keys: list[str], settings: StatsSettings, source: str = "judged") -> list[Cell]:
    cells = cells_from_db(con, cell_keys, source)
    for cell in cells:
        cell.draw(settings.resamples, settings.seed)
    return cells


def _frame(cells: list[Cell], cell_keys: list[str], make) -> pd.DataFrame:
    frames = []
    for cell in cells:
        frame = make(cell)
        if len(frame):
            frames.append(frame.assign(**dict(zip(cell_keys, cell.key))))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _of(frame: pd.DataFrame, cell_keys: list[str], cell: Cell) -> pd.DataFrame:
    """The rows of ``frame`` that belong to ``cell``."""
    if frame.empty:
        return frame
    return frame[(frame[cell_keys] == pd.Series(dict(zip(cell_keys, cell.key)))).all(axis=1)]


def _insert(con, table: str, frame: pd.DataFrame, settings: StatsSettings) -> None:
    if frame.empty:
        return
    con.register("stats_src", frame.assign(boot_resamples=settings.resamples, boot_seed=settings.seed))
    con.execute(f"INSERT INTO {table} BY NAME SELECT *, getvariable('build_id') AS build_id, "
                "getvariable('built_at')::TIMESTAMPTZ AS built_at FROM stats_src ORDER BY ALL")
    con.unregister("stats_src")


def _add_intervals(con, table: str, dims: list[str], cell_keys: list[str], frame: pd.DataFrame,
                   settings: StatsSettings) -> None:
    """Join the bootstrap columns onto a ``label_rates_*`` table built in SQL (rows without a draw: NULL)."""
    keys = cell_keys + dims + ["label"]
    if frame.empty:
        frame = pd.DataFrame(columns=keys + INTERVALS)
    con.register("intervals_src", frame[keys + INTERVALS])
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT r.*, {', '.join(f'b.{c}' for c in INTERVALS)}, "
                f"{settings.resamples} AS boot_resamples, {settings.seed} AS boot_seed "
                f"FROM {table} r LEFT JOIN intervals_src b USING ({', '.join(keys)}) ORDER BY ALL")
    con.unregister("intervals_src")


def add_statistics(con, cell_keys: list[str], label_rate_tables: dict[str, list[str]], reference: str,
                   settings: StatsSettings, source: str = "judged") -> None:
    """Fill the statistics tables (``statistics.sql`` must have created them) and add the bootstrap
    intervals to the ``label_rates_*`` tables (``label_rate_tables``: table -> the dims it is joined on).
    ``source``: the judged rows (the view, or the build's materialized copy of its columns)."""
    cells = _cells(con, cell_keys, settings, source) if settings.resamples else []
    intervals = [rate_intervals(cell) for cell in cells]
    for table, dims in label_rate_tables.items():
        parts = [frame[table].assign(**dict(zip(cell_keys, cell.key))) for cell, frame in zip(cells, intervals)]
        _add_intervals(con, table, dims, cell_keys, pd.concat(parts, ignore_index=True) if parts else
                       pd.DataFrame(), settings)
    comparisons = _frame(cells, cell_keys, lambda c: group_comparisons(
        c, reference, settings.seed, settings.p_adjust, settings.primary_measure))
    _insert(con, "group_comparisons", comparisons, settings)
    _insert(con, "group_effects_mixed", _frame(cells, cell_keys, lambda c: agreement(
        group_effects(c, settings.primary_measure, reference), _of(comparisons, cell_keys, c))),
        settings)
    _insert(con, "name_sensitivity",
            _frame(cells, cell_keys, lambda c: name_sensitivity(c, reference).assign(reference_group=reference)),
            settings)
    _insert(con, "model_comparisons", model_comparisons(cells, cell_keys, reference, settings.seed, settings.p_adjust,
                                                        settings.primary_measure), settings)
    lineage = con.execute("SELECT model_key, checkpoint_family, checkpoint_order FROM checkpoints").df()
    _insert(con, "checkpoint_changes", checkpoint_changes(cells, cell_keys, lineage, reference, settings.seed,
                                                          settings.p_adjust, settings.primary_measure), settings)
    counts = labelled.labelled_counts(con, cell_keys)
    labelled.add_agreement(con)
    labelled.add_validations(con, counts, cell_keys, reference, settings.resamples, settings.seed)
    _add_ppi(con, cells, cell_keys, counts, reference, settings)
    validations = con.execute("SELECT * FROM judge_validations").df()
    if len(validations):
        _insert(con, "refusal_rates_corrected", _frame(cells, cell_keys, lambda c: corrected_rates(
            c, dict(zip(cell_keys, c.key)), validations, reference, settings.seed)), settings)


def _add_ppi(con, cells: list[Cell], cell_keys: list[str], counts: pd.DataFrame, reference: str,
             settings: StatsSettings) -> None:
    """Prediction-powered rates and gaps of every cell whose outputs carry human labels."""
    rates, gaps = [], []
    for cell in cells:
        part = labelled.of_cell(counts, cell_keys, cell.key)
        if len(part):
            r, g = ppi_tables(cell, labelled.pairs(cell, part), reference, settings.p_adjust, settings.primary_measure)
            keys = dict(zip(cell_keys, cell.key))
            rates.append(r.assign(**keys))
            gaps.append(g.assign(**keys))
    _insert(con, "label_rates_ppi", pd.concat(rates, ignore_index=True) if rates else pd.DataFrame(), settings)
    _insert(con, "group_comparisons_ppi", pd.concat(gaps, ignore_index=True) if gaps else pd.DataFrame(), settings)
