"""Resumable, cached generation: each finished batch is stored at once, and a row whose cache key is
already stored is never generated again.

Cache key = hash of (model version, prompt id and text, prompt-format fingerprint, effective sampling
config hash, seed): changing any part regenerates exactly the rows it touches, and a run killed mid-way
loses at most the batch in flight. The chunk files live under
``<warehouse>/cache/generations/model=<m>/group=<g>/``, outside ``staging/``, so the warehouse build never
loads them; the consolidated partition in ``staging/`` stays the one table the rest of the pipeline reads.
Only generators that declare ``reproducible = True`` are cached (a row must be a function of its key).
Pure module: no dagster, no duckdb.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pandas as pd

from qos_pipeline.generation.interface import GenerationRequest, GenerationResult, Generator
from qos_pipeline.generation.sampling import SamplingConfig
from qos_pipeline.provenance import check_key, generation_id
from qos_pipeline.staging import write_partition

CACHE_COLUMNS = ["generation_id", "cache_key", "prompt_id", "sample", "prompt_format", "system_prompt", "model_key",
                 "model_version", "gen_config", "gen_config_hash", "seed", "response", "finish_reason",
                 "n_new_tokens", "source", "run_id", "created_at"]
log = logging.getLogger("qos_pipeline.generation")


def cache_key(model_version: str, request: GenerationRequest, config_hash: str) -> str:
    """16 hex identifying one generated row's inputs (the prompt text too, in case a template is edited)."""
    parts = [model_version, request.prompt_id, request.user_text, request.prompt_format.fingerprint(),
             config_hash, str(request.seed)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def cache_folder(warehouse: Path, model: str, group: str) -> Path:
    """The folder of a (model, group) partition's generation cache."""
    return (Path(warehouse) / "cache" / "generations" / f"model={check_key(model, 'model')}"
            / f"group={check_key(group, 'group')}")


class RowStore:
    """The stored rows of one partition: append-only chunk files, compacted into one after a run."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._seen: list[Path] = []

    def load(self) -> dict[str, dict[str, Any]]:
        """cache_key -> row, from every readable chunk (a chunk is written atomically, so all or none)."""
        if self.folder is None or not self.folder.is_dir():
            return {}
        rows: dict[str, dict[str, Any]] = {}
        self._seen = sorted(self.folder.glob("*.parquet"))
        for file in self._seen:
            try:
                frame = pd.read_parquet(file)
            except Exception as exc:  # pyarrow raises several types; the rows are simply generated again
                log.warning("cache chunk %s is unreadable (%s); its rows will be generated again", file, exc)
                continue
            for row in cast(list[dict[str, Any]], frame.to_dict("records")):  # column names are text
                # chunks of older versions lack the id; it is a function of the row, so add it
                row.setdefault("generation_id", row_id(row["model_key"], row["cache_key"], row["response"]))
                rows.setdefault(row["cache_key"], row)
        return rows

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store ``rows`` as a new chunk (nothing without a folder or rows)."""
        if self.folder is not None and rows:
            name = f"chunk-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.parquet"
            write_partition(rows_frame(rows), self.folder / name)

    def compact(self, rows: dict[str, dict[str, Any]]) -> None:
        """Replace all chunk files by one holding ``rows`` (written before the old ones are removed, so a
        crash in between leaves duplicates, which ``load`` tolerates, never a loss)."""
        if self.folder is None or not self.folder.is_dir():
            return
        old = sorted(self.folder.glob("*.parquet"))
        compacted = self.folder / f"compact-{uuid.uuid4().hex[:12]}.parquet"
        kept = write_partition(rows_frame(list(rows.values())), compacted)
        for file in old:
            if file != kept:
                file.unlink(missing_ok=True)


def rows_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a typed frame (nullable integer seeds and counts, UTC timestamps), as stored and staged."""
    df = pd.DataFrame(list(rows), columns=CACHE_COLUMNS)
    for col in ("seed", "n_new_tokens"):
        df[col] = pd.array(df[col].to_list(), dtype="Int64")
    df["sample"] = df["sample"].astype("int64")
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df


def row_id(model_key: str, key: str, response: str) -> str:
    """A generated row's ``generation_id``: the partition's model key (one checkpoint may be audited under
    two keys: their rows stay apart), the cache key and the response."""
    return generation_id(f"{model_key}\x1f{key}", response)


def _row(key: str, request: GenerationRequest, result: GenerationResult, base: dict[str, Any]) -> dict[str, Any]:
    return {**base, "generation_id": row_id(base["model_key"], key, result.response), "cache_key": key,
            "prompt_id": request.prompt_id, "sample": request.sample,
            "prompt_format": request.prompt_format.id, "system_prompt": request.prompt_format.system,
            "seed": request.seed, "response": result.response, "finish_reason": result.finish_reason,
            "n_new_tokens": result.n_new_tokens, "created_at": pd.Timestamp.now(tz="UTC")}


def generate_rows(generator: Generator, requests: Sequence[GenerationRequest], sampling: SamplingConfig,
                  batch_size: int, run_id: str, store: RowStore,
                  progress: Callable[[int, int], None] | None = None) -> tuple[list[dict[str, Any]], int]:
    """One row per request (in request order), reusing stored rows; returns (rows, number generated now).

    ``sampling`` must be the effective (resolved) config: its hash is part of every key."""
    reuse = generator.reproducible
    base = {"model_key": generator.model_key, "model_version": generator.model_version, "source": "generated",
            "gen_config": json.dumps(sampling.as_dict(), sort_keys=True), "gen_config_hash": sampling.config_hash(),
            "run_id": run_id}
    keys = [cache_key(generator.model_version, r, sampling.config_hash()) for r in requests]
    stored = store.load() if reuse else {}
    rows = {k: stored[k] for k in keys if k in stored}
    todo = [i for i, k in enumerate(keys) if k not in rows]
    if rows:
        log.info("%s: %d of %d rows already generated (cache), %d to generate",
                 generator.model_key, len(rows), len(keys), len(todo))
    if progress is not None:
        progress(len(rows), len(keys))
    try:
        for indices, results in generator.iter_batches([requests[i] for i in todo], sampling, batch_size):
            new = [_row(keys[todo[i]], requests[todo[i]], res, base) for i, res in zip(indices, results)]
            if reuse:
                store.append(new)
            rows.update((row["cache_key"], row) for row in new)
            if progress is not None:
                progress(len(rows), len(keys))
    except BaseException:
        kept = f"they are stored in {store.folder} and a rerun resumes from there" if reuse else "nothing is kept"
        log.warning("generation with %s stopped after %d of %d rows (%s)", generator.model_key, len(rows),
                    len(keys), kept)
        raise
    if reuse and todo:
        store.compact({**stored, **rows})
    return [rows[k] for k in keys], len(todo)
