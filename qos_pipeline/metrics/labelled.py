"""Human labels of audited outputs in the warehouse build: their agreement between annotators, the judge
validated against them on the model's own outputs (``judge_validation*`` rows whose ``outputs_model`` is
the model), and the labelled counts on each cell's grid that the prediction-powered estimates
(``stats.ppi``) combine with the judge's labels.

A validation on a model's own labelled outputs is exactly the check the judge needs for that model: no
other file can stand for it, because a judge's errors depend on the phrasing it reads.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from qos_pipeline.judging.annotation.store import agreement
from qos_pipeline.judging.evaluation.metrics import to_frames, validate
from qos_pipeline.judging.human import HUMAN_JUDGE
from qos_pipeline.metrics.stats.cells import LABELS, Cell

VALIDATION_NOTE = "human labels of this model's own outputs (qos label import)"


def labelled_counts(con, cell_keys: list[str]) -> pd.DataFrame:
    """Per cell (judges other than ``human``), template, name and (judge label, human label): the count of
    human-labelled outputs. Empty when no human label meets a judged output."""
    keys = ", ".join(f"j.{k}" for k in cell_keys)
    return con.execute(f"""
        SELECT {keys}, j.template_id, j.name, j.name_group, j.label AS judge_label, h.label AS human_label,
               count(*)::INTEGER AS k
        FROM judged j JOIN human_label_consensus h ON h.generation_id = j.generation_id AND h.model_key = j.model_key
        WHERE j.judge_id <> ? GROUP BY ALL ORDER BY ALL""", [HUMAN_JUDGE]).df()


def labelled_outputs(con, model: str, judge_id: str | None = None) -> pd.DataFrame:
    """The model's human-labelled outputs with every judge's label (or one judge's): prompt_text, response,
    name, name_group, template_id, label (the human consensus), judge_id, judge_label."""
    rows = con.execute("""
        SELECT j.generation_id, j.prompt_text, j.response, j.name, j.name_group, j.template_id, h.label,
               j.judge_id, j.label AS judge_label
        FROM judged j JOIN human_label_consensus h ON h.generation_id = j.generation_id AND h.model_key = j.model_key
        WHERE j.model_key = ? AND j.judge_id <> ? AND (? IS NULL OR j.judge_id = ?)
        ORDER BY j.judge_id, j.generation_id""", [model, HUMAN_JUDGE, judge_id, judge_id]).df()
    return rows


def pairs(cell: Cell, counts: pd.DataFrame) -> np.ndarray:
    """(T, N, judge label, human label) counts of the cell's labelled outputs on its grid."""
    out = np.zeros((len(cell.templates), len(cell.names), len(LABELS), len(LABELS)))
    t = pd.Index(cell.templates).get_indexer(pd.Index(counts["template_id"]))
    n = pd.Index(cell.names).get_indexer(pd.Index(counts["name"]))
    j = pd.Index(LABELS).get_indexer(pd.Index(counts["judge_label"]))
    h = pd.Index(LABELS).get_indexer(pd.Index(counts["human_label"]))
    np.add.at(out, (t, n, j, h), counts["k"].to_numpy(dtype=float))
    return out


def of_cell(counts: pd.DataFrame, cell_keys: list[str], key: tuple) -> pd.DataFrame:
    """The rows of ``counts`` of the cell ``key`` (values of ``cell_keys``)."""
    if counts.empty:
        return counts
    return counts[(counts[cell_keys] == pd.Series(dict(zip(cell_keys, key)))).all(axis=1)]


def add_agreement(con) -> int:
    """Fill ``annotator_agreement`` from the stored human labels; the number of rows written."""
    frame = agreement(con.execute("SELECT * FROM human_labels").df())
    if frame.empty:
        return 0
    con.register("agreement_src", frame)
    con.execute("INSERT INTO annotator_agreement BY NAME SELECT *, getvariable('build_id') AS build_id, "
                "getvariable('built_at')::TIMESTAMPTZ AS built_at FROM agreement_src")
    con.unregister("agreement_src")
    return len(frame)


def add_validations(con, counts: pd.DataFrame, cell_keys: list[str], reference: str, resamples: int,
                    seed: int) -> int:
    """Validate every cell's judge on the model's own human-labelled outputs into the judge_validation*
    tables (one validation per cell). Returns how many."""
    if counts.empty:
        return 0
    made = 0
    for key, part in counts.groupby(cell_keys, sort=True):
        rows = part.loc[part.index.repeat(part["k"])].reset_index(drop=True)
        report = validate(rows.rename(columns={"human_label": "label"}), rows["judge_label"].to_numpy(),
                          reference, resamples=resamples or 1000, seed=seed)
        cell = dict(zip(cell_keys, key))
        digest = hashlib.sha256(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes()).hexdigest()
        dataset = f"labels-{hashlib.sha256(repr(key).encode()).hexdigest()[:12]}"
        keys = {"validation_id": f"{cell['judge_id']}@{dataset}", "judge_id": cell["judge_id"], "dataset": dataset,
                "dataset_file": f"human_labels of {cell['model_key']} ({cell['model_version']})",
                "dataset_sha256": digest, "note": VALIDATION_NOTE, "run_id": "build",
                "validated_at": pd.Timestamp.now(tz="UTC"), "outputs_model": cell["model_key"],
                "grouped_by": "name_group"}
        for table, frame in to_frames(report, keys).items():
            con.register("validation_src", frame)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM validation_src")
            con.unregister("validation_src")
        made += 1
    return made
