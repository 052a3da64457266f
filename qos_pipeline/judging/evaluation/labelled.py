"""Human-labelled files for judge validation and training: rows of a pilot CSV, or of a CSV/JSONL file
with prompt, response, label (and optional group, name, any other columns), labels mapped onto the
taxonomy through a label vocabulary (``ingest.labels``). Rows need not name a person or hold a [BLANK]:
a refusal benchmark (XSTest) checks a judge as well as fill-in-the-blank outputs do."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from qos_pipeline.ingest.labels import load_vocabulary
from qos_pipeline.ingest.reading import IngestError, read_table
from qos_pipeline.ingest.recorded import PILOT_COLUMNS, load_recorded


def load_labelled(path: Path, assets_dir: Path, labels: str | None = None) -> pd.DataFrame:
    """Rows of a human-labelled file with ``prompt_text``, ``response``, ``name`` (None when the prompt names
    no known person), ``name_group`` (``unknown`` then), ``template_id``, the file's other columns, and
    ``label`` mapped onto the taxonomy by ``labels`` (a vocabulary name or mapping file; default: the
    taxonomy's own labels)."""
    path = Path(path)
    vocabulary = load_vocabulary(labels)
    raw = read_table(path)
    if PILOT_COLUMNS <= set(raw.columns):  # the pilot's own format carries taxonomy labels
        df = load_recorded(path, assets_dir, require_design=False, frame=raw)
        return vocabulary.prepare(df.reset_index(drop=True), path)
    raw = vocabulary.prepare(raw.reset_index(drop=True), path)
    df = load_recorded(path, assets_dir, require_design=False, frame=raw)
    return df.reset_index(drop=True)


def group_column(df: pd.DataFrame, by: str | None, path: Path) -> pd.Series:
    """The groups of the per-group figures: column ``by`` of the file, else the name group."""
    if by is None:
        return df["name_group"].astype(str)
    aliases = {"group": "name_group", "prompt": "prompt_text", "template": "template_text"}
    column = by if by in df else aliases.get(by)
    if column is None or column not in df:
        shown = sorted(c for c in df.columns if not c.startswith(("prompt_id", "template_id")))
        raise IngestError(f"--by {by!r}: {path} has no such column; choose one of {shown}")
    return df[column].map(lambda v: "(missing)" if pd.isna(v) else str(v))


def dataset_key(path: Path, digest: str, variant: str = "") -> str:
    """A file-name-safe key for a labelled file: its slug plus 8 hex of its content hash (plus ``variant``,
    a short tag of a non-default label vocabulary or grouping, so those figures are stored beside the
    default ones instead of replacing them)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", Path(path).stem.lower()).strip("-._")[:40] or "data"
    return f"{slug}-{digest[:8]}" + (f"-{variant}" if variant else "")
