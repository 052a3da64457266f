"""Reading annotators' labels back: the sample CSV (``label`` and ``annotator`` filled in) or a Label Studio
export (its JSON, with ``annotations``, or JSON-MIN, with the choice as a column). Every label is named by
the place it came from (the CSV's physical line, the export's task), so an error can say where to fix it.
Rows without a label are skipped (not labelled yet) and counted."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd

from qos_pipeline import taxonomy

CONTROL = "label"
"""The name of the choice control in the labelling config (``sample.label_config``)."""


class LabelFileError(ValueError):
    """A label file cannot be imported; the message names the file, the place and what to change."""


@dataclass(frozen=True)
class Read:
    """A labelled file read: its labels, and how many rows had none yet."""

    labels: pd.DataFrame  # generation_id, label, annotator, place
    skipped: int  # rows with no label yet


def read_labels(path: Path, default_annotator: str = "") -> Read:
    """The labels of ``path`` (.csv, or .json from Label Studio), normalized onto the taxonomy."""
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise LabelFileError(f"{path} is empty; give the labelled CSV or a Label Studio JSON export")
    try:
        rows = _csv(path) if path.suffix.lower() == ".csv" else _label_studio(path)
    except UnicodeDecodeError:
        raise LabelFileError(f"{path} is not UTF-8 text; save it as UTF-8 and import it again") from None
    frame = pd.DataFrame(rows, columns=["generation_id", "label", "annotator", "place"])
    missing = frame["label"].str.strip() == ""
    frame = frame[~missing].copy()
    frame["annotator"] = frame["annotator"].str.strip().replace("", default_annotator or "annotator")
    frame["generation_id"] = frame["generation_id"].str.strip()
    bad = []
    for i, (raw, place) in enumerate(zip(frame["label"], frame["place"])):
        try:
            frame.iloc[i, cast(int, frame.columns.get_loc("label"))] = taxonomy.normalize_label(raw)
        except ValueError:
            bad.append(f"{place}: {raw!r}")
    if bad or (frame["label"] == taxonomy.UNJUDGED).any():
        bad += [f"{p}: 'unjudged'" for p in frame.loc[frame["label"] == taxonomy.UNJUDGED, "place"]]
        raise LabelFileError(f"{path}: unknown label(s) {'; '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; "
                             f"use one of: {', '.join(taxonomy.LABELS)}")
    return Read(frame.reset_index(drop=True), int(missing.sum()))


def _csv(path: Path) -> list[tuple[str, str, str, str]]:
    """(generation_id, label, annotator, 'line N') of every record, N the record's first physical line."""
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        needed = {"generation_id", "label"} - set(reader.fieldnames or [])
        if needed:
            raise LabelFileError(f"{path} lacks column(s) {sorted(needed)}: label the CSV written by "
                                 "`qos label sample` (columns generation_id, ..., label, annotator)")
        start = reader.line_num + 1
        for record in reader:
            if None in record:
                raise LabelFileError(f"{path} line {start}: more fields than the header has; check its quoting")
            out.append((record.get("generation_id") or "", record.get("label") or "",
                        record.get("annotator") or "", f"line {start}"))
            start = reader.line_num + 1
    return out


def _label_studio(path: Path) -> list[tuple[str, str, str, str]]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LabelFileError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); export the project "
                             "from Label Studio as JSON or JSON-MIN") from None
    if not isinstance(tasks, list):
        raise LabelFileError(f"{path}: a Label Studio export is a JSON list of tasks, not a {type(tasks).__name__}")
    out = []
    for number, task in enumerate(tasks, start=1):
        place = f"task {number}" + (f" (id {task['id']})" if isinstance(task, dict) and "id" in task else "")
        if not isinstance(task, dict):
            raise LabelFileError(f"{path} {place}: not a JSON object")
        if "annotations" in task or "data" in task:
            out += _full_task(path, task, place)
        else:  # JSON-MIN: the task's data and the choice side by side
            out.append((str(task.get("generation_id", "")), _choice(task.get(CONTROL)),
                        str(task.get("annotator", "")), place))
    return out


def _full_task(path: Path, task: dict, place: str) -> list[tuple[str, str, str, str]]:
    data = task.get("data") or {}
    generation_id = str(data.get("generation_id", ""))
    if not generation_id:
        raise LabelFileError(f"{path} {place}: its data has no generation_id; import tasks made by `qos label sample`")
    out = []
    for annotation in task.get("annotations") or []:
        if annotation.get("was_cancelled"):
            continue
        choices = [r for r in annotation.get("result") or [] if r.get("from_name") == CONTROL]
        label = _choice((choices[0].get("value") or {}).get("choices")) if choices else ""
        who = annotation.get("completed_by", "")
        if isinstance(who, dict):
            who = who.get("email") or who.get("id") or ""
        out.append((generation_id, label, str(who), place))
    return out or [(generation_id, "", "", place)]


def _choice(value) -> str:
    """The chosen label of a choices value (a list of one, or a string in JSON-MIN)."""
    if isinstance(value, dict):
        value = value.get("choices")
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)
