"""Reading a file of recorded outputs (CSV or JSONL) into a frame, with errors that name the file, the line
and what to change: not UTF-8, a broken JSON line, a JSON array where JSON Lines are expected."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

LINES = "qos_lines"
"""``DataFrame.attrs`` key: the file line of each row (JSONL skips blank lines, so the index is not it)."""


class IngestError(ValueError):
    """The file cannot be ingested; the message names the file, the rows and what to change."""


def line_of(df: pd.DataFrame, index: int, path: Path) -> str:
    """``line N`` of the file that row ``index`` of ``df`` (as read by ``read_table``) came from."""
    lines = df.attrs.get(LINES)
    if lines is not None and 0 <= index < len(lines):
        return f"line {lines[index]}"
    return f"line {index + (2 if path.suffix.lower() == '.csv' else 1)}"  # CSV: after the header line


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> IngestError:
    """Named by the first line that is not UTF-8 (a reader's own offset counts from its buffer, not the file)."""
    where, byte = "", exc.object[exc.start:exc.start + 1]
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                where, byte = f" (line {number}", line[bad.start:bad.start + 1]
                break
    where = f"{where}, byte {byte!r})" if where else f" (byte {byte!r})"
    return IngestError(f"{path} is not UTF-8 text{where}; save it as UTF-8 (in a spreadsheet: Save as 'CSV UTF-8'; "
                       "in an editor: encoding UTF-8) and ingest it again")


def read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line; a broken line is named by its number, a JSON array is said to be one."""
    rows, lines = [], []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    if number == 1 and line.lstrip().startswith("["):
                        raise _array(path) from None
                    raise IngestError(f"{path} line {number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                                      "fix or remove that line (each line must be one JSON object)") from None
                if isinstance(row, list) and number == 1:
                    raise _array(path)
                if not isinstance(row, dict):
                    raise IngestError(f"{path} line {number}: a JSON {type(row).__name__}, not an object; each line "
                                      'must be one object such as {"prompt": ..., "response": ...}')
                rows.append(row)
                lines.append(number)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    df = pd.DataFrame(rows)
    df.attrs[LINES] = lines
    return df


def _array(path: Path) -> IngestError:
    return IngestError(f"{path} holds a JSON array, but a .jsonl file must hold JSON Lines: one object per line, "
                       "no enclosing [ ]; convert it (e.g. jq -c '.[]' FILE > FILE.jsonl) and ingest that")


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise IngestError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise IngestError(f"{path} is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            df = read_jsonl(path)
        elif suffix == ".csv":
            df = pd.read_csv(path, encoding="utf-8")
        else:
            raise IngestError(f"{path}: unsupported file type {path.suffix!r}; give a .csv or .jsonl file")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, IngestError):
            raise
        raise IngestError(f"{path} cannot be parsed ({exc}); check that it is valid {path.suffix[1:]}") from exc
    if df.empty:
        raise IngestError(f"{path} has a header but no rows")
    return df
