"""Judging one model x group partition with one judge, skipping the work when nothing changed.

Each judgment file records (in its Parquet metadata) the judge id and a hash of the generation rows it
judged. When both are unchanged the stored file is reused as is: judging is deterministic for a given
judge id (rules, fitted model, or LLM weights + rubric), so re-judging would only cost time (minutes
for an LLM judge). Pure: no dagster import.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from qos_pipeline import pipeline
from qos_pipeline.judges.base import Judge
from qos_pipeline.checks import CheckOutcome
from qos_pipeline.taxonomy import UNJUDGED

HASHED = ["prompt_id", "sample", "model_key", "model_version", "prompt_format", "prompt_text", "name", "response"]
ATTR = "qos_judging"  # key in DataFrame.attrs, which pandas keeps in the Parquet file's metadata


def generations_hash(gens: pd.DataFrame) -> str:
    """Order-independent hash of what a judge sees (and the keys its judgments are stored under)."""
    rows = gens[HASHED].astype(str).sort_values(["prompt_format", "prompt_id", "sample"]).to_numpy().tolist()
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def stored_provenance(path: Path) -> dict:
    """``{"judge_id", "generations_hash"}`` of a stored judgment file, or {} (missing, older, unreadable)."""
    if not path.is_file():
        return {}
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta.get(b"PANDAS_ATTRS", b"{}")).get(ATTR, {})  # where pandas 2.x keeps attrs
    except Exception:  # a corrupt file is simply re-judged (and then replaced)
        return {}


def unjudged_check(df: pd.DataFrame) -> CheckOutcome:
    """Warning: some responses could not be judged. They stay ``unjudged`` (never coerced) and count in n."""
    n = int((df["label"] == UNJUDGED).sum())
    reasons = df.loc[df["label"] == UNJUDGED, "reason"].value_counts().head(3).to_dict()
    return CheckOutcome("judgments_unjudged", n == 0, f"{n} of {len(df)} responses unjudged",
                        {"unjudged": n, "share": n / len(df) if len(df) else 0.0, "reasons": str(reasons)},
                        blocking=False)


def judge_partition(gens: pd.DataFrame, judge: Judge, run_id: str, stored: Path
                    ) -> tuple[pd.DataFrame, list[CheckOutcome], bool]:
    """(judgments, checks, reused): the stored file when judge id and generations are unchanged."""
    digest = generations_hash(gens)
    provenance = {"judge_id": judge.judge_id, "generations_hash": digest}
    if stored_provenance(stored) == provenance:
        df = pd.read_parquet(stored)
        return df, pipeline.judgment_checks(df) + [unjudged_check(df)], True
    df, outcomes = pipeline.judge(gens, judge, run_id)
    df.attrs[ATTR] = provenance
    return df, outcomes + [unjudged_check(df)], False
