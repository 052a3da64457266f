"""Keeping human labels: one staged file per model (``staging/human_labels/model=<key>/labels.parquet``),
keyed by (generation_id, annotator). An import adds to what earlier imports stored; a label of the same
output by the same annotator replaces the earlier one (a relabel), another annotator's label is kept beside
it (two annotators on the same rows give an agreement figure, ``agreement``). Pure: no dagster, no duckdb.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from qos_pipeline.judging.annotation.reading import LabelFileError
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import read_partition, write_partition

TABLE = "human_labels"
KEY = ["generation_id", "annotator"]


def labels_file(staging: Path, model: str) -> Path:
    """Where the human labels of ``model`` are staged."""
    return staging / TABLE / f"model={check_key(model, 'model')}" / "labels.parquet"


def stored_labels(staging: Path, model: str) -> pd.DataFrame:
    """The human labels stored for ``model`` (an empty frame with the columns when none)."""
    path = labels_file(staging, model)
    if not path.is_file():
        return pd.DataFrame(columns=["generation_id", "model_key", "label", "annotator", "source_file",
                                     "imported_at", "import_id"])
    return read_partition(path, f"human labels of {model}")


def check_known(labels: pd.DataFrame, known: set[str], model: str, path: Path) -> None:
    """Every generation id must be an output of ``model``; the unknown ones are named by their place."""
    unknown = labels[~labels["generation_id"].isin(known)]
    if len(unknown):
        shown = "; ".join(f"{p}: {g!r}" for g, p in zip(unknown["generation_id"][:5], unknown["place"][:5]))
        raise LabelFileError(f"{path}: {len(unknown)} generation id(s) are not outputs of model {model!r} in the "
                             f"warehouse ({shown}{' ...' if len(unknown) > 5 else ''}); import the file with the "
                             "--model it was sampled from, or sample again (`qos label sample`)")
    twice = labels[labels.duplicated(KEY, keep=False)]
    clash = twice.groupby(KEY)["label"].nunique()
    if (clash > 1).any():
        gid, who = clash[clash > 1].index[0]
        places = ", ".join(twice[(twice["generation_id"] == gid) & (twice["annotator"] == who)]["place"])
        raise LabelFileError(f"{path}: annotator {who!r} gives output {gid} different labels ({places}); keep one")


def merged(existing: pd.DataFrame, new: pd.DataFrame, model: str, source: str, import_id: str) -> pd.DataFrame:
    """``existing`` plus ``new`` (generation_id, label, annotator): a (generation_id, annotator) seen again
    takes the new label."""
    now = pd.Timestamp(datetime.now(UTC))
    rows = new[["generation_id", "label", "annotator"]].drop_duplicates(KEY, keep="last").assign(
        model_key=model, source_file=source, imported_at=now, import_id=import_id)
    both = pd.concat([existing, rows], ignore_index=True) if len(existing) else rows
    return both.drop_duplicates(KEY, keep="last").sort_values(KEY).reset_index(drop=True)[
        ["generation_id", "model_key", "label", "annotator", "source_file", "imported_at", "import_id"]]


def store(staging: Path, model: str, labels: pd.DataFrame) -> Path:
    """Write the model's labels (atomic replace of its one file)."""
    return write_partition(labels, labels_file(staging, model))


def agreement(labels: pd.DataFrame) -> pd.DataFrame:
    """Per model and pair of annotators, on the outputs both labelled: n, share agreeing, Cohen's kappa."""
    from sklearn.metrics import cohen_kappa_score

    rows = []
    for model, mine in labels.groupby("model_key", sort=True):
        wide = mine.pivot_table(index="generation_id", columns="annotator", values="label", aggfunc="first")
        for a, b in itertools.combinations(sorted(wide.columns), 2):
            both = wide[[a, b]].dropna()
            if both.empty:
                continue
            same = both[a] == both[b]
            kappa = cohen_kappa_score(both[a], both[b]) if both.stack().nunique() > 1 else float("nan")
            rows.append({"model_key": model, "annotator_a": a, "annotator_b": b, "n": len(both),
                         "agreement": float(same.mean()), "kappa": float(kappa)})
    return pd.DataFrame(rows, columns=["model_key", "annotator_a", "annotator_b", "n", "agreement", "kappa"])
