"""The metrics stage as the asset runs it: build a new warehouse from every staged partition, run the Great
Expectations suites on it, and publish it only when every blocking suite passes."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from qos_pipeline.checks import CheckOutcome, raise_if_blocked
from qos_pipeline.judging.evaluation import intervals, measures
from qos_pipeline.judging.evaluation import metrics as validation
from qos_pipeline.metrics import analysis, build, comments, expectations, labelled, publish
from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.expectations import validate_database
from qos_pipeline.metrics.stats import (
    cells,
    checkpoints,
    compare,
    corrected,
    design,
    draws,
    mixed,
    models,
    multiplicity,
    ppi,
    rates,
    sensitivity,
)
from qos_pipeline.processes import pause_point
from qos_pipeline.provenance import code_digest
from qos_pipeline.staging import writer_lock


def rebuild_warehouse(staging: Path, db: Path, reference_group: str, stats: StatsSettings = StatsSettings(),
                      notify: Callable[[str], None] | None = None, lineage: pd.DataFrame | None = None
                      ) -> tuple[dict[str, int], list[CheckOutcome]]:
    """Build a new warehouse from all staged partitions, validate it, and publish it only if it passes.
    ``lineage``: the checkpoints' families and orders (``generation.models.lineage.frame``).

    Holds the warehouse's writer lock from the first staged file read to the publish, so the published
    file is never older than a build that started after it (``notify``: how a wait for the lock is
    reported). Leftovers of killed builds (and a stale WAL that would keep ``db`` from opening) go first."""
    with writer_lock(staging, f"build of {db}", notify=notify):
        return _rebuild(staging, db, reference_group, stats, lineage)


def _rebuild(staging: Path, db: Path, reference_group: str, stats: StatsSettings, lineage: pd.DataFrame | None
             ) -> tuple[dict[str, int], list[CheckOutcome]]:
    db.parent.mkdir(parents=True, exist_ok=True)
    publish.remove_leftovers(db)
    built = publish.temp_build_path(db)
    try:
        counts = build.build_database(staging, built, reference_group, stats, lineage)
        outcomes = validate_database(built)
        raise_if_blocked(f"warehouse {db}", outcomes)
        pause_point("build:built")
        publish.publish(built, db)
        pause_point("build:published")
    finally:
        built.unlink(missing_ok=True)
        Path(str(built) + ".wal").unlink(missing_ok=True)
    return counts, outcomes


def code_version() -> str:
    """16 hex of what builds the tables: the SQL files and the modules that run them (an edit to either
    marks the metric tables stale)."""
    modules = (build, comments, expectations, analysis, labelled, cells, checkpoints, compare, corrected, design,
               draws, mixed, models, multiplicity, ppi, rates, sensitivity, validation, measures, intervals,
               sys.modules[__name__])
    digest = hashlib.sha256(code_digest(*modules).encode())
    for file in sorted(build.SQL_DIR.glob("*.sql")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]
