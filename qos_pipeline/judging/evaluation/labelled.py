"""Human-labelled files for judge validation and training: rows of a pilot CSV, or of a CSV/JSONL file
with prompt, response, label (and optional group, name), labels normalized onto the taxonomy."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.ingest.reading import IngestError
from qos_pipeline.ingest.recorded import load_recorded


def load_labelled(path: Path, assets_dir: Path) -> pd.DataFrame:
    """Rows of a human-labelled file (pilot CSV, or CSV/JSONL with prompt, response, label, optional
    group and name), read by ``ingest.recorded.load_recorded``; ``label`` normalized onto the taxonomy."""
    df = load_recorded(Path(path), assets_dir)
    if "label" not in df:
        raise IngestError(f"{path} has no 'label' column: validation and training need human labels")
    df = df.reset_index(drop=True)
    df["label"] = [taxonomy.normalize_label(x) for x in df["label"]]
    return df


def dataset_key(path: Path, digest: str) -> str:
    """A file-name-safe key for a labelled file: its slug plus 8 hex of its content hash."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", Path(path).stem.lower()).strip("-._")[:40] or "data"
    return f"{slug}-{digest[:8]}"
