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

from qos_pipeline.checks import CheckOutcome
from qos_pipeline.judging.base import Judge, JudgeInput
from qos_pipeline.judging.checks import judgment_checks, unjudged_check
from qos_pipeline.provenance import utc_now
from qos_pipeline.staging import stored

HASHED = ["generation_id", "prompt_id", "sample", "model_key", "model_version", "prompt_format", "prompt_text", "name",
          "response"]
ATTR = "qos_judging"  # key in DataFrame.attrs, which pandas keeps in the Parquet file's metadata


def generations_hash(gens: pd.DataFrame) -> str:
    """Order-independent hash of what a judge sees (and the keys its judgments are stored under)."""
    rows = gens[HASHED].astype(str).sort_values(["prompt_format", "prompt_id", "sample"]).to_numpy().tolist()
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def stored_provenance(path: Path) -> dict:
    """``{"judge_id", "generations_hash"}`` of a stored judgment file, or {} (missing, older, unreadable)."""
    return stored(path, ATTR)


def judge_rows(generations: pd.DataFrame, judge_impl: Judge, run_id: str) -> tuple[pd.DataFrame, list[CheckOutcome]]:
    """One judgment per generation row by ``judge_impl``; ``unjudged`` rows are kept and counted."""
    recorded = generations["recorded_label"] if "recorded_label" in generations else [None] * len(generations)
    items = [JudgeInput(p, r, n, None if pd.isna(h) else h) for p, r, n, h in
             zip(generations["prompt_text"], generations["response"], generations["name"], recorded)]
    out = judge_impl.judge(items)
    if len(out) != len(items):
        raise RuntimeError(f"judge {judge_impl.judge_id} returned {len(out)} judgments for {len(items)} responses")
    df = generations[["generation_id", "prompt_id", "sample", "model_key", "model_version", "prompt_format"]].copy()
    df["judge_id"] = judge_impl.judge_id
    df["label"] = [j.label for j in out]
    df["reason"] = [j.reason for j in out]
    df["scores"] = [json.dumps(j.scores, sort_keys=True) if j.scores else None for j in out]
    df["run_id"], df["judged_at"] = run_id, utc_now()
    return df, judgment_checks(df)


def judge_partition(gens: pd.DataFrame, judge: Judge, run_id: str, stored: Path
                    ) -> tuple[pd.DataFrame, list[CheckOutcome], bool]:
    """(judgments, checks, reused): the stored file when judge id and generations are unchanged."""
    digest = generations_hash(gens)
    provenance = {"judge_id": judge.judge_id, "generations_hash": digest}
    if stored_provenance(stored) == provenance:
        df = pd.read_parquet(stored)
        return df, judgment_checks(df) + [unjudged_check(df)], True
    df, outcomes = judge_rows(gens, judge, run_id)
    df.attrs[ATTR] = provenance
    return df, outcomes + [unjudged_check(df)], False


def stale_judgment_files(folder: Path, gens: pd.DataFrame, keep: set[str]) -> list[Path]:
    """Judgment files in a partition's folder that label other responses than ``gens`` (judges not re-run
    since the generations were replaced), leaving out the judges in ``keep``. A file without provenance is
    stale too: nothing says which responses it labelled."""
    digest = generations_hash(gens)
    return sorted(f for f in Path(folder).glob("*.parquet")
                  if f.stem not in keep and stored_provenance(f).get("generations_hash") != digest)
