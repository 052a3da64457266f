"""The pipeline's steps as plain functions: the Dagster assets and the CLI are thin layers over these.

Each step returns its DataFrame(s) plus the ``CheckOutcome``s of the checks that guard it; callers write
nothing when a blocking check fails, so a bad run never replaces good stored data.
"""

from __future__ import annotations

from pathlib import Path


from qos_pipeline import expectations, warehouse
from qos_pipeline.checks import CheckOutcome, raise_if_blocked



def rebuild_warehouse(staging: Path, sql_dir: Path, db: Path, reference_group: str
                      ) -> tuple[dict[str, int], list[CheckOutcome]]:
    """Build a new warehouse from all staged partitions, validate it, and publish it only if it passes."""
    built = warehouse.temp_build_path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    counts = warehouse.build_database(staging, sql_dir, built, reference_group)
    try:
        outcomes = expectations.validate_database(built)
        raise_if_blocked(f"warehouse {db}", outcomes)
        warehouse.publish(built, db)
    finally:
        built.unlink(missing_ok=True)
    return counts, outcomes
