"""The generations' checks: the pandera schema of a generations partition, completeness (one row per
prompt format x prompt x sample) and a warning for empty responses."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.checks import CheckOutcome, schema_check
from qos_pipeline.prompts.checks import NONEMPTY, PROMPT_FIELDS, STR, UTC
from qos_pipeline.taxonomy import LABELS

ROW_KEYS = {
    "model_key": pa.Column(**STR, checks=pa.Check.str_matches(r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    "model_version": pa.Column(**STR, checks=NONEMPTY),
    "prompt_format": pa.Column(**STR, checks=NONEMPTY),
    "prompt_id": PROMPT_FIELDS["prompt_id"],
    "sample": pa.Column(int, checks=pa.Check.ge(0)),
    "run_id": pa.Column(**STR),
}


GENERATION_ID = pa.Column(**STR, checks=pa.Check.str_matches(r"^[0-9a-f]{16}$"))
"""Hash of what produced a row and its response (``provenance.generation_id``); judgments carry it."""

generations_schema = pa.DataFrameSchema(
    {
        # one row per id: two rows with one id would be one output twice, and a label would join both
        "generation_id": pa.Column(**STR, checks=GENERATION_ID.checks, unique=True),
        **ROW_KEYS, **{k: v for k, v in PROMPT_FIELDS.items() if k != "prompt_id"},
        "system_prompt": pa.Column(str, nullable=True),
        "gen_config": pa.Column(**STR), "gen_config_hash": pa.Column(**STR),
        "seed": pa.Column("Int64", nullable=True),
        # An empty response is a real model output (judged `failure`), not bad data: see responses_nonempty.
        "response": pa.Column(**STR),
        "finish_reason": pa.Column(**STR, checks=pa.Check.isin(["eos", "length", "recorded"])),
        "n_new_tokens": pa.Column("Int64", nullable=True),
        "source": pa.Column(**STR),
        "created_at": pa.Column(**UTC),
        # Generated rows carry their cache key (generation.cache); ingested rows have none.
        "cache_key": pa.Column(str, nullable=True, required=False),
        # Ingested with --labels human: the label the annotators gave the response (the ``human`` judge).
        "recorded_label": pa.Column(str, nullable=True, required=False, checks=pa.Check.isin(LABELS)),
    },
    unique=["model_key", "model_version", "prompt_format", "prompt_id", "sample"], strict=True, name="generations",
)


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
                        {"empty": empty}, blocking=False)


def generation_checks(df: pd.DataFrame, prompt_ids: Sequence[str], samples: int,
                      formats: Sequence[str] | None = None) -> list[CheckOutcome]:
    """``formats``: the prompt formats expected (None: whichever the rows carry, as for ingested files)."""
    return [
        schema_check("generations_schema", generations_schema, df),
        generations_complete("generations_complete", df, list(prompt_ids), samples, formats),
        responses_nonempty("generations_responses_nonempty", df),
    ]
