"""Recorded rows -> generations partitions: per-group frames with their checks (``to_partitions``, for
frames in memory), and per-group Parquet files written chunk by chunk with the same checks (``spool``), so
a file of any size is ingested holding one chunk at a time."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd

from qos_pipeline.checks import CheckOutcome, schema_check
from qos_pipeline.generation.checks import generation_checks, generations_complete, generations_schema
from qos_pipeline.generation.models.added import RecordedSource
from qos_pipeline.generation.models.files import cached_digest
from qos_pipeline.ingest.reading import CHUNK_ROWS, IngestError
from qos_pipeline.ingest.recorded import iter_recorded
from qos_pipeline.prompts.design import PROMPT_META
from qos_pipeline.provenance import check_key, generation_id, utc_now
from qos_pipeline.tables.checks import GENERATIONS_COMPLETE, GENERATIONS_RESPONSES_NONEMPTY, GENERATIONS_SCHEMA
from qos_pipeline.taxonomy import normalize_label


def generation_rows(df: pd.DataFrame, path: Path, model: str, prompt_format: str, run_id: str, with_labels: bool,
                    version: str, created_at: pd.Timestamp | None = None) -> pd.DataFrame:
    """The generations rows of recorded rows ``df`` (every column of the schema). With ``with_labels`` each
    row keeps its human label (normalized) as ``recorded_label``, which the ``human`` judge reports."""
    gen = df[["prompt_id", "sample", *PROMPT_META, "response"]].copy()
    gen.attrs.clear()  # the file's line numbers stay with the read rows
    gen = gen.assign(model_key=model, model_version=version, prompt_format=prompt_format, system_prompt=None,
                     gen_config=json.dumps({"source": str(path.name)}), gen_config_hash="recorded",
                     seed=pd.array([None] * len(gen), dtype="Int64"), finish_reason="recorded",
                     n_new_tokens=pd.array([None] * len(gen), dtype="Int64"), source=f"ingest:{path.name}",
                     run_id=run_id, created_at=created_at if created_at is not None else utc_now())
    key = f"{model}\x1f{version}\x1f{prompt_format}"
    gen.insert(0, "generation_id", [generation_id(f"{key}\x1f{p}\x1f{k}", r) for p, k, r
                                    in zip(gen["prompt_id"], gen["sample"], gen["response"])])
    if with_labels:
        gen["recorded_label"] = _labels(df, path)
    return gen


def to_partitions(df: pd.DataFrame, path: Path, model: str, prompt_format: str, run_id: str, with_labels: bool,
                  version: str | None = None) -> dict[str, tuple[pd.DataFrame, list[CheckOutcome]]]:
    """Per-group generations frames and the outcomes of their checks; nothing is written.
    ``version``: the recorded source's (default: from the file's content)."""
    check_key(model, "model")
    version = version or "recorded-" + cached_digest(path)[:12]
    gen = generation_rows(df, path, model, prompt_format, run_id, with_labels, version)
    out = {}
    for key, part in gen.groupby("name_group", sort=False):
        group = cast(str, key)
        check_key(group, "group")
        part = part.reset_index(drop=True)
        out[group] = (part, generation_checks(part, part["prompt_id"].unique().tolist(), int(part["sample"].max()) + 1))
    return out


def _labels(df: pd.DataFrame, path: Path) -> list[str]:
    if "label" not in df:
        raise IngestError(f"{path} has no 'label' column, so --labels human cannot be used")
    labels = []
    for i, raw in zip(df.index, df["label"]):
        try:
            labels.append(normalize_label(raw))
        except ValueError as exc:
            raise IngestError(f"{path} row {i + 2}: {exc}") from None
    return labels


def raise_if_failed(outcomes: dict[str, list[CheckOutcome]], path: Path) -> None:
    """Refuse a file any of whose partitions fails a blocking check, naming the file, group and checks."""
    for group, checks in outcomes.items():
        failed = [o for o in checks if o.blocking and not o.passed]
        if failed:
            raise IngestError(f"{path}, group {group!r}: "
                              + "; ".join(f"{o.name}: {o.description} {o.metadata}" for o in failed))


@dataclass
class Spooled:
    """One group's rows written to ``file`` chunk by chunk, with what its checks need."""

    group: str
    file: Path
    rows: int = 0
    empty: int = 0
    first: dict = field(default_factory=dict)  # model_version, source, gen_config of the first row
    schema_failure: CheckOutcome | None = None
    finish_reasons: Counter = field(default_factory=Counter)
    _writer: Any = None  # pyarrow.parquet.ParquetWriter once the first part is written
    _schema: Any = None

    def add(self, part: pd.DataFrame) -> None:
        """Append ``part`` to the file (the first part fixes its schema) and update the counts its checks need."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        outcome = schema_check(GENERATIONS_SCHEMA, generations_schema, part)
        if not outcome.passed and self.schema_failure is None:
            self.schema_failure = outcome
        if self._writer is None:
            self.first = {k: str(part[k].iloc[0]) for k in ("model_version", "source", "gen_config")}
            schema = pa.Schema.from_pandas(part, preserve_index=False)
            # a column all None in the first chunk (system_prompt) is text in every chunk
            self._schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema],
                                     metadata=schema.metadata)
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.file, self._schema)
        self._writer.write_table(pa.Table.from_pandas(part, schema=self._schema, preserve_index=False))
        self.rows += len(part)
        self.empty += int((part["response"].str.strip() == "").sum())
        self.finish_reasons.update(part["finish_reason"].tolist())

    def close(self) -> None:
        """Close the file (no-op when nothing was written)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def outcomes(self) -> list[CheckOutcome]:
        """The checks of ``generation_checks`` on the whole file: the schema chunk by chunk, completeness
        and uniqueness on the key columns read back alone."""
        import pyarrow.parquet as pq

        keys = pq.read_table(self.file, columns=["prompt_format", "prompt_id", "sample", "generation_id"]).to_pandas()
        schema = self.schema_failure or CheckOutcome(
            GENERATIONS_SCHEMA, True, f"generations: {self.rows} rows match the schema", {"rows": self.rows})
        repeated_ids = int(keys["generation_id"].duplicated().sum())
        if schema.passed and repeated_ids:
            schema = CheckOutcome(GENERATIONS_SCHEMA, False, f"generations: {repeated_ids} repeated generation_id "
                                  "values across chunks", {"failures": f"generation_id unique: {repeated_ids}"})
        complete = generations_complete(GENERATIONS_COMPLETE, keys, keys["prompt_id"].unique().tolist(),
                                        int(keys["sample"].max()) + 1)
        nonempty = CheckOutcome(GENERATIONS_RESPONSES_NONEMPTY, self.empty == 0,
                                f"{self.empty} of {self.rows} responses are empty", {"empty": self.empty})
        return [schema, complete, nonempty]


def spool(source: RecordedSource, run_id: str, assets_dir: Path, file_for: Callable[[str], Path],
          groups: set[str] | None = None, chunk_rows: int = CHUNK_ROWS) -> dict[str, Spooled]:
    """Read ``source.file`` chunk by chunk into one Parquet file per group (``file_for(group)``; only
    ``groups`` unless None), holding one chunk at a time. Every chunk is converted and checked in full
    (whichever groups are kept), so a bad row anywhere fails every group's spool. On an error the files
    written so far are deleted."""
    check_key(source.key, "model")
    version, created_at = source.version, utc_now()
    spooled: dict[str, Spooled] = {}
    try:
        for chunk in iter_recorded(source.file, assets_dir, max_response_chars=source.max_response_chars,
                                   chunk_rows=chunk_rows):
            gen = generation_rows(chunk, source.file, source.key, source.prompt_format, run_id, source.labels,
                                  version, created_at)
            for key, part in gen.groupby("name_group", sort=False):
                group = cast(str, key)
                if groups is not None and group not in groups:
                    continue
                if group not in spooled:
                    spooled[group] = Spooled(check_key(group, "group"), file_for(group))
                spooled[group].add(part.reset_index(drop=True))
    except BaseException:
        for item in spooled.values():
            item.close()
            item.file.unlink(missing_ok=True)
        raise
    for item in spooled.values():
        item.close()
    return spooled
