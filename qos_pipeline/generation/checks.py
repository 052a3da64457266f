"""The generations' checks: the pandera schema of a generations partition, completeness (one row per
prompt format x prompt x sample) and a warning for empty responses."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.checks import CheckOutcome, schema_check
from qos_pipeline.prompts.checks import NONEMPTY, PROMPT_RULES
from qos_pipeline.tables.checks import GENERATIONS_COMPLETE, GENERATIONS_RESPONSES_NONEMPTY, GENERATIONS_SCHEMA
from qos_pipeline.tables.frames import pandera_schema
from qos_pipeline.taxonomy import LABELS

ROW_RULES = {
    "model_key": pa.Check.str_matches(r"^[a-z0-9][a-z0-9._-]{0,63}$"),
    "model_version": NONEMPTY,
    "prompt_format": NONEMPTY,
    "prompt_id": PROMPT_RULES["prompt_id"],
    "sample": pa.Check.ge(0),
    "generation_id": pa.Check.str_matches(r"^[0-9a-f]{16}$"),
}
"""Value rules of the keys every output row carries (judgments too): ``generation_id`` is the hash of what
produced a row and its response (``provenance.generation_id``)."""

generations_schema = pandera_schema(
    "generations",
    {**ROW_RULES, **{k: v for k, v in PROMPT_RULES.items() if k != "prompt_id"},
     # An empty response is a real model output (judged `failure`), not bad data: see responses_nonempty.
     "finish_reason": pa.Check.isin(["eos", "length", "recorded"]),
     # Ingested with --labels human: the label the annotators gave the response (the ``human`` judge).
     "recorded_label": pa.Check.isin(LABELS)},
    # Generated rows carry their cache key (generation.cache); ingested rows have none.
    optional=("cache_key", "recorded_label"),
    # one row per output: one output twice would be counted twice, and a label would join both
    unique=("model_key", "model_version", "prompt_format", "prompt_id", "sample"))


def generations_complete(name: str, generations: pd.DataFrame, prompt_ids: list[str], samples: int,
                         formats: Sequence[str] | None = None) -> CheckOutcome:
    """One row per (prompt format, prompt, sample) of the partition: nothing lost, nothing duplicated.

    ``formats`` None: the formats the rows carry (ingested files record one of their own)."""
    formats = list(formats) if formats is not None else sorted(set(generations["prompt_format"]))
    got = generations.groupby(["prompt_format", "prompt_id", "sample"]).size()
    want = {(f, p, s) for f in formats for p in prompt_ids for s in range(samples)}
    missing = want - set(got.index)
    dup = int((got > 1).sum())
    ok = bool(want) and not missing and not dup and len(generations) == len(want)
    return CheckOutcome(name, ok, f"{len(generations)} rows for {len(want)} (prompt format, prompt, sample) triples",
                        {"missing": len(missing), "duplicated": dup, "prompt_formats": ", ".join(formats)})


def responses_nonempty(name: str, generations: pd.DataFrame) -> CheckOutcome:
    """Warning only: empty responses are kept (and judged) but worth a look, e.g. a broken chat template."""
    empty = int((generations["response"].str.strip() == "").sum())
    return CheckOutcome(name, empty == 0, f"{empty} of {len(generations)} responses are empty",
                        {"empty": empty})


def generation_checks(df: pd.DataFrame, prompt_ids: Sequence[str], samples: int,
                      formats: Sequence[str] | None = None) -> list[CheckOutcome]:
    """``formats``: the prompt formats expected (None: whichever the rows carry, as for ingested files)."""
    return [
        schema_check(GENERATIONS_SCHEMA, generations_schema, df),
        generations_complete(GENERATIONS_COMPLETE, df, list(prompt_ids), samples, formats),
        responses_nonempty(GENERATIONS_RESPONSES_NONEMPTY, df),
    ]
