"""Evaluate one judge on a human-labelled file: the step behind ``qos judge validate`` and the
``judge_validations`` asset. Pure (no dagster/duckdb import); the callers stage the frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from qos_pipeline.judging.evaluation import metrics
from qos_pipeline.judging.evaluation.labelled import dataset_key, load_labelled
from qos_pipeline.settings import Paths
from qos_pipeline.judging.base import JudgeInput
from qos_pipeline.judging import learned
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import write_partition


@dataclass
class Evaluation:
    judge_id: str
    dataset: str  # the stage key: file slug + content hash (+ subset)
    report: dict
    frames: dict[str, pd.DataFrame]
    agreement: dict = field(default_factory=dict)


def _inputs(df: pd.DataFrame) -> list[JudgeInput]:
    return [JudgeInput(p, r, n) for p, r, n in zip(df["prompt_text"], df["response"], df["name"])]


def _predict(df: pd.DataFrame, spec: str, paths: Paths, cv_folds: int | None) -> tuple[str, list[str], dict, str]:
    """(judge id, labels, ensemble agreement, note)."""

    if cv_folds:
        if spec != "learned":
            raise ValueError(f"--cv trains the learned judge per fold: use --judge learned, not {spec!r}")
        digest = hashlib.sha256((learned.data_hash(df) + learned.FEATURES).encode()).hexdigest()[:8]
        note = f"learned judge cross-validated: {cv_folds} folds split by template (no template in train and test)"
        return f"learned.cv{cv_folds}-by-template.{digest}", learned.cross_validate(df, cv_folds).tolist(), {}, note
    judge = get_judge(spec, paths)
    labels = [j.label for j in judge.judge(_inputs(df))]
    note = ""
    if isinstance(judge, learned.LearnedJudge) and judge.meta.get("training_data_sha256") == learned.data_hash(df):
        note = "in-sample: this judge was trained on these very rows, so the figures are optimistic"
    return judge.judge_id, labels, dict(getattr(judge, "agreement", {}) or {}), note


def evaluate(path: Path, spec: str, paths: Paths, reference_group: str, cv_folds: int | None = None,
             limit: int | None = None, seed: int = 0, run_id: str = "cli") -> Evaluation:
    """Judge every row of ``path`` (or a seeded random ``limit`` of them) and compare with its labels."""
    path = Path(path).resolve()
    df = load_labelled(path, paths.assets)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    dataset = dataset_key(path, digest)
    if limit and limit < len(df):
        df = df.sample(n=limit, random_state=seed).sort_index().reset_index(drop=True)
        dataset += f"-n{limit}s{seed}"
    judge_id, labels, agreement, note = _predict(df, spec, paths, cv_folds)
    report = metrics.validate(df, labels, reference_group)
    report.update(judge_id=judge_id, dataset=dataset, note=note)
    if agreement:
        report["agreement"] = agreement
    keys = {"validation_id": f"{judge_id}@{dataset}", "judge_id": judge_id, "dataset": dataset,
            "dataset_file": path.name, "dataset_sha256": digest, "note": note, "run_id": run_id,
            "validated_at": pd.Timestamp(datetime.now(timezone.utc))}
    return Evaluation(judge_id, dataset, report, metrics.to_frames(report, keys), agreement)


def stage(frames: dict[str, pd.DataFrame], staging: Path, judge_id: str, dataset: str) -> list[Path]:
    """Write each table to ``staging/<table>/judge=<judge_id>/<dataset>.parquet`` (atomic replace, so
    validating the same judge on the same file again replaces its rows, never duplicates them)."""
    check_key(judge_id, "judge id"), check_key(dataset, "dataset key")
    return [write_partition(df, staging / table / f"judge={judge_id}" / f"{dataset}.parquet")
            for table, df in frames.items()]
