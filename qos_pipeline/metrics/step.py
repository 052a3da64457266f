"""The metrics stage as the asset runs it: build a new warehouse from every staged partition, run the Great
Expectations suites on it, and publish it only when every blocking suite passes."""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd

from qos_pipeline import tables
from qos_pipeline.checks import CheckOutcome, raise_if_blocked
from qos_pipeline.judging import evaluation
from qos_pipeline.metrics import analysis, build, comments, declared, expectations, labelled, publish, stats
from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.expectations import validate_database
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


def _package(package: ModuleType) -> list[ModuleType]:
    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


def table_modules() -> list[ModuleType]:
    """The modules that decide what the tables hold: the build, the declarations (``tables``,
    ``metrics.declared*``), every producer's module (a statistic declared anywhere, found from its
    declaration), and the statistics and judge-validation code they call (``metrics.stats``,
    ``judging.evaluation``), each once, by name."""
    found = [build, comments, expectations, analysis, labelled, declared, *declared.STATISTICS_MODULES,
             sys.modules[__name__], tables, *_package(tables), *_package(stats), *_package(evaluation),
             *(sys.modules[name] for name in tables.producer_modules())]
    return sorted({m.__name__: m for m in found}.values(), key=lambda m: m.__name__)


def code_version() -> str:
    """16 hex of what builds the tables: the SQL files and ``table_modules`` (an edit to either marks the
    metric tables stale)."""
    digest = hashlib.sha256(code_digest(*table_modules()).encode())
    for file in sorted(build.SQL_DIR.glob("*.sql")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]
