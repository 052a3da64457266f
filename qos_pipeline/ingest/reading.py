"""Reading a file of recorded outputs (CSV or JSONL) into a frame, with errors that name the file, the line
and what to change: not UTF-8, a broken JSON line, a JSON array where JSON Lines are expected."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

CHUNK_ROWS = 50_000
"""Rows read at a time (``iter_table``): memory stays flat in the size of the file."""
LINES = "qos_lines"
"""``DataFrame.attrs`` key: where each row is in its file (JSONL skips blank lines, so the index is not it):
its line in a JSONL file, its record number (0 = the first after the header) in a CSV file, where a quoted
field may span lines; ``physical_lines`` turns either into the line a message names."""


class Lines:
    """Line numbers of a frame's rows, kept in ``attrs``: pandas deep-copies and compares ``attrs`` in most
    operations, which for a list of a chunk's numbers cost more than the work itself; this one is shared."""

    def __init__(self, numbers):
        self.numbers = np.asarray(numbers, dtype=np.int64)

    def __deepcopy__(self, memo) -> Lines:
        return self  # never changed in place

    def __eq__(self, other) -> bool:
        return isinstance(other, Lines) and np.array_equal(self.numbers, other.numbers)

    __hash__ = None  # type: ignore[assignment]  # unhashable: equality compares arrays

    def __len__(self) -> int:
        return len(self.numbers)


class IngestError(ValueError):
    """The file cannot be ingested; the message names the file, the rows and what to change."""


def line_numbers(df: pd.DataFrame, path: Path) -> np.ndarray:
    """Where every row of ``df`` (as read by ``iter_table``) is in its file, by position: JSONL lines, CSV
    record numbers (see ``LINES``; ``physical_lines`` for the lines)."""
    lines = df.attrs.get(LINES)
    if lines is not None and len(lines) == len(df):
        return lines.numbers
    return np.arange(len(df)) + (0 if _is_csv(path) else 1)


def physical_lines(path: Path, numbers) -> list[int]:
    """The line of the file on which each of ``numbers`` (from ``line_numbers``) starts. For a CSV file the
    records are counted again with the csv module (only for messages: it reads the file up to the last one)."""
    numbers = [int(n) for n in numbers]
    if not _is_csv(path):
        return numbers
    wanted, found = set(numbers), {}
    csv.field_size_limit(2**31 - 1)  # a response may be longer than the csv module's default field limit
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)  # the header
        start, record = reader.line_num + 1, 0
        for row in reader:
            if row:  # pandas skips blank lines, so they are no record
                if record in wanted:
                    found[record] = start
                    if len(found) == len(wanted):
                        break
                record += 1
            start = reader.line_num + 1
    return [found.get(n, n + 2) for n in numbers]


def line_of(df: pd.DataFrame, index: int, path: Path) -> str:
    """``line N`` of the file that row ``index`` (position) of ``df`` (as read by ``iter_table``) starts on."""
    return f"line {physical_lines(path, [line_numbers(df, path)[index]])[0]}"


def _is_csv(path: Path) -> bool:
    return Path(path).suffix.lower() == ".csv"


def refuse_nul(path: Path) -> None:
    """A NUL byte ends a text field early in CSV readers (the rest of the response would be lost unseen):
    refused, naming its line."""
    line = 1
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            at = block.find(b"\0")
            if at >= 0:
                line += block.count(b"\n", 0, at)
                raise IngestError(f"{path} line {line}: a NUL byte (\\x00) in the text; remove it "
                                  "(a binary or UTF-16 file? save it as UTF-8 text) and ingest the file again")
            line += block.count(b"\n")


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


def iter_jsonl(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """One JSON object per line, ``chunk_rows`` objects at a time; a broken line is named by its number, a
    JSON array is said to be one."""
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
                if "\\u0000" in line and any("\0" in str(v) for v in row.values()):
                    raise IngestError(f"{path} line {number}: a NUL character (\\u0000) in the text; remove it and "
                                      "ingest the file again")
                rows.append(row)
                lines.append(number)
                if len(rows) >= chunk_rows:
                    yield _chunk(rows, lines)
                    rows, lines = [], []
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    if rows:
        yield _chunk(rows, lines)


def _chunk(rows: list[dict], lines: list[int]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.attrs[LINES] = Lines(lines)
    return df


def joined(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunks of one file as one frame, with every row's line."""
    if not chunks:
        return pd.DataFrame()
    df = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    df.attrs[LINES] = Lines(np.concatenate([c.attrs[LINES].numbers for c in chunks if LINES in c.attrs]))
    return df


def _array(path: Path) -> IngestError:
    return IngestError(f"{path} holds a JSON array, but a .jsonl file must hold JSON Lines: one object per line, "
                       "no enclosing [ ]; convert it (e.g. jq -c '.[]' FILE > FILE.jsonl) and ingest that")


def iter_table(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The rows of a CSV or JSONL file, ``chunk_rows`` at a time (a frame's ``attrs[LINES]``: each row's line;
    the index runs on across chunks). A NUL byte, and a missing, empty, unparsable or header-only file are
    IngestErrors."""
    if not path.is_file():
        raise IngestError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise IngestError(f"{path} is empty")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise IngestError(f"{path}: unsupported file type {path.suffix!r}; give a .csv or .jsonl file")
    refuse_nul(path)
    seen = 0
    try:
        chunks: Iterable[pd.DataFrame]
        if suffix == ".csv":  # only an empty cell is missing: "None", "NA", "null" are text as written
            chunks = pd.read_csv(path, encoding="utf-8", chunksize=chunk_rows, keep_default_na=False, na_values=[""])
        else:
            chunks = iter_jsonl(path, chunk_rows)
        for df in chunks:
            if df.empty:
                continue
            if suffix == ".csv":  # record numbers (see LINES)
                df.attrs[LINES] = Lines(np.arange(seen, seen + len(df)))
            else:
                df.index = pd.RangeIndex(seen, seen + len(df))
            seen += len(df)
            yield df
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, IngestError):
            raise
        raise IngestError(f"{path} cannot be parsed ({exc}); check that it is valid {path.suffix[1:]}") from exc
    if not seen:
        raise IngestError(f"{path} has a header but no rows")


def read_table(path: Path) -> pd.DataFrame:
    """The whole file as one frame (``iter_table``): for files that fit in memory, such as labelled ones."""
    return joined(list(iter_table(path)))
