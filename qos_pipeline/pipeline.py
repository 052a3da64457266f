"""The pipeline's steps as plain functions: the Dagster assets and the CLI are thin layers over these.

Each step returns its DataFrame(s) plus the ``CheckOutcome``s of the checks that guard it; callers write
nothing when a blocking check fails, so a bad run never replaces good stored data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from qos_pipeline import expectations, schemas, warehouse
from qos_pipeline.judges.base import Judge, JudgeInput
from qos_pipeline.checks import CheckOutcome, raise_if_blocked, schema_check
from qos_pipeline.provenance import utc_now



def judge(generations: pd.DataFrame, judge_impl: Judge, run_id: str) -> tuple[pd.DataFrame, list[CheckOutcome]]:
    """One judgment per generation row by ``judge_impl``; ``unjudged`` rows are kept and counted."""
    items = [JudgeInput(p, r, n) for p, r, n in
             zip(generations["prompt_text"], generations["response"], generations["name"])]
    out = judge_impl.judge(items)
    if len(out) != len(items):
        raise RuntimeError(f"judge {judge_impl.judge_id} returned {len(out)} judgments for {len(items)} responses")
    df = generations[["prompt_id", "sample", "model_key", "model_version", "prompt_format"]].copy()
    df["judge_id"] = judge_impl.judge_id
    df["label"] = [j.label for j in out]
    df["reason"] = [j.reason for j in out]
    df["scores"] = [json.dumps(j.scores, sort_keys=True) if j.scores else None for j in out]
    df["run_id"], df["judged_at"] = run_id, utc_now()
    return df, judgment_checks(df)


def judgment_checks(df: pd.DataFrame) -> list[CheckOutcome]:
    outcome = schema_check("judgments_labels_in_taxonomy", schemas.judgments_schema, df)
    unjudged = int((df["label"] == "unjudged").sum())
    outcome.metadata["unjudged"] = unjudged
    return [outcome]


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
