"""Evaluate one judge on a human-labelled file: the step behind ``qos judge validate`` and the
``judge_validations`` asset. Pure (no dagster/duckdb import); the callers stage the frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from qos_pipeline.ingest.labels import load_vocabulary
from qos_pipeline.judging import learned
from qos_pipeline.judging.base import JudgeInput
from qos_pipeline.judging.evaluation import metrics
from qos_pipeline.judging.evaluation.labelled import dataset_key, group_column, load_labelled
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.provenance import check_key, slugify
from qos_pipeline.settings import Paths
from qos_pipeline.staging import write_partition


@dataclass
class Evaluation:
    """One judge's evaluation on one labelled dataset: the report, its tables and ensemble agreement."""

    judge_id: str
    dataset: str  # the stage key: file slug + content hash (+ subset)
    report: dict
    frames: dict[str, pd.DataFrame]
    agreement: dict = field(default_factory=dict)


def _inputs(df: pd.DataFrame) -> list[JudgeInput]:
    return [JudgeInput(p, r, n) for p, r, n in zip(df["prompt_text"], df["response"], df["name"])]


def _predict(df: pd.DataFrame, spec: str, paths: Paths, cv_folds: int | None, features: str = "tfidf",
             cv_by: str | None = None) -> tuple[str, list[str], dict, str]:
    """(judge id, labels, ensemble agreement, note)."""
    if cv_folds:
        if spec != "learned":
            raise ValueError(f"--cv trains the learned judge per fold: use --judge learned, not {spec!r}")
        by = cv_by or "template_id"
        digest = hashlib.sha256((learned.data_hash(df) + learned.FEATURES + features + by).encode()).hexdigest()[:8]
        kind = "learned" if features == "tfidf" else "learned.lm"
        note = (f"learned judge ({features} features) cross-validated: {cv_folds} folds split by {by} "
                f"(no {by} value in both train and test)")
        labels = learned.cross_validate(df, cv_folds, features, paths, by).tolist()
        return f"{kind}.cv{cv_folds}-by-{slugify(by)[:16]}.{digest}", labels, {}, note
    judge = get_judge(spec, paths)
    labels = [j.label for j in judge.judge(_inputs(df))]
    note = ""
    seen = learned.in_sample(judge, df) if isinstance(judge, learned.LearnedJudge) else 0
    if seen:  # by row hashes: a subset of the training rows is found as well as the whole file
        note = f"in-sample: {seen} of {len(df)} rows were in this judge's training data, so the figures are optimistic"
    return judge.judge_id, labels, dict(getattr(judge, "agreement", {}) or {}), note


def _variant(labels: str | None, by: str | None, limit: int | None, seed: int) -> str:
    """Tag of a non-default vocabulary, grouping or subset; part of the stored dataset key."""
    tags = [slugify(Path(labels).stem)[:12] if labels and labels not in ("taxonomy", "human") else "",
            f"by-{slugify(by)[:12]}" if by else "", f"n{limit}s{seed}" if limit else ""]
    return "-".join(t for t in tags if t)


def evaluate(path: Path, spec: str, paths: Paths, reference_group: str | None, cv_folds: int | None = None,
             limit: int | None = None, seed: int = 0, run_id: str = "cli", labels: str | None = None,
             by: str | None = None, outputs_of: str | None = None,
             audited: dict[str, list[str]] | None = None, features: str = "tfidf",
             cv_by: str | None = None) -> Evaluation:
    """Judge every row of ``path`` (or a seeded random ``limit`` of them) and compare with its labels.

    ``labels``: the file's label vocabulary (``ingest.labels``); ``by``: the column of the per-group
    figures (default: the name group); ``outputs_of``: the model key whose outputs the file holds, stored
    with the validation; ``audited``: judge id -> models the warehouse holds that judge's labels of, to
    warn when the validation was measured on another model's outputs (``outputs_warnings``). With
    ``cv_folds``: ``features`` of the learned judge (``tfidf``, ``lm[:MODEL]``) and the column whose values
    split the folds (``cv_by``, default the template).
    """
    path = Path(path).resolve()
    if outputs_of is not None:
        check_key(outputs_of, "--outputs-of model key")
    df = load_labelled(path, paths.assets, labels)
    groups = group_column(df, by, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    dataset = dataset_key(path, digest, _variant(labels, by, limit, seed))
    if len(dataset) > 64:  # keys are at most 64 characters: a long tag becomes a short hash of itself
        dataset = dataset_key(path, digest, hashlib.sha256(dataset.encode()).hexdigest()[:8])
    if limit and limit < len(df):
        keep = df.sample(n=limit, random_state=seed).sort_index().index
        df, groups = df.loc[keep].reset_index(drop=True), groups.loc[keep].reset_index(drop=True)
    judge_id, predicted, agreement, note = _predict(df, spec, paths, cv_folds, features, cv_by)
    if load_vocabulary(labels).binary:
        note = "; ".join(n for n in (note, f"the {labels} labels say only refusal or not: read the refusal figures "
                                     "(six-way figures count any judge label but answer/refusal as an error)") if n)
    report = metrics.validate(df, predicted, reference_group, groups=groups)
    warnings = outputs_warnings(outputs_of, (audited or {}).get(judge_id))
    report.update(judge_id=judge_id, dataset=dataset, note=note, grouped_by=by or "name_group",
                  labels=labels or "taxonomy", outputs_model=outputs_of, warnings=warnings)
    if agreement:
        report["agreement"] = agreement
    keys = {"validation_id": f"{judge_id}@{dataset}", "judge_id": judge_id, "dataset": dataset,
            "dataset_file": path.name, "dataset_sha256": digest, "note": note, "run_id": run_id,
            "validated_at": pd.Timestamp(datetime.now(UTC)), "outputs_model": outputs_of,
            "grouped_by": by or "name_group"}
    return Evaluation(judge_id, dataset, report, metrics.to_frames(report, keys), agreement)


def outputs_warnings(outputs_of: str | None, audited_models: list[str] | None) -> list[str]:
    """Why these error rates may not fit the audited models' outputs. A judge's errors depend on the
    phrasing it reads (the rules judge is near-perfect on Llama-2's refusals and far weaker on other
    families'), so error rates measured on one model's outputs correct another model's rates only as
    far as the two models phrase refusals alike."""
    audited = sorted(set(audited_models or []))
    if outputs_of is None:
        if not audited:
            return []
        return [f"whose outputs this file holds is not recorded (--outputs-of MODEL_KEY): refusal_rates_corrected "
                f"will apply these error rates to {', '.join(audited)} without knowing whether they were measured "
                "on that model's outputs"]
    others = [m for m in audited if m != outputs_of]
    if not others:
        return []
    return [f"these error rates were measured on outputs of {outputs_of!r}, but the warehouse holds this judge's "
            f"labels of {', '.join(others)}: correcting their refusal rates with them assumes the judge errs on "
            "their phrasing as it does on this model's; validate on a labelled sample of their own outputs"]


def stage(frames: dict[str, pd.DataFrame], staging: Path, judge_id: str, dataset: str) -> list[Path]:
    """Write each table to ``staging/<table>/judge=<judge_id>/<dataset>.parquet`` (atomic replace, so
    validating the same judge on the same file again replaces its rows, never duplicates them)."""
    check_key(judge_id, "judge id"), check_key(dataset, "dataset key")
    return [write_partition(df, staging / table / f"judge={judge_id}" / f"{dataset}.parquet")
            for table, df in frames.items()]
