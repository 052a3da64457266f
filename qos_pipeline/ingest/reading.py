"""Reading a file of recorded outputs (CSV or JSONL) into a frame, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


class IngestError(ValueError):
    """The file cannot be ingested; the message names the file, the rows and what to change."""


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise IngestError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise IngestError(f"{path} is empty")
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            df = pd.read_json(path, lines=True)
        elif path.suffix.lower() == ".csv":
            df = pd.read_csv(path)
        else:
            raise IngestError(f"{path}: unsupported file type {path.suffix!r}; give a .csv or .jsonl file")
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, IngestError):
            raise
        raise IngestError(f"{path} cannot be parsed ({exc}); check that it is valid {path.suffix[1:]}") from exc
    if df.empty:
        raise IngestError(f"{path} has a header but no rows")
    return df
