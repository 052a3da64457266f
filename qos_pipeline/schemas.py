"""pandera schemas for every DataFrame an asset writes, and the row-level checks that protect them."""

from __future__ import annotations


import pandas as pd
import pandera.pandas as pa

from qos_pipeline.prompts.checks import NONEMPTY, PROMPT_FIELDS, STR, UTC
from qos_pipeline.taxonomy import ALL_LABELS
from qos_pipeline.checks import CheckOutcome



_KEYS = {
    "model_key": pa.Column(**STR, checks=pa.Check.str_matches(r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    "model_version": pa.Column(**STR, checks=NONEMPTY),
    "prompt_format": pa.Column(**STR, checks=NONEMPTY),
    "prompt_id": PROMPT_FIELDS["prompt_id"],
    "sample": pa.Column(int, checks=pa.Check.ge(0)),
    "run_id": pa.Column(**STR),
}

generations_schema = pa.DataFrameSchema(
    {
        **_KEYS, **{k: v for k, v in PROMPT_FIELDS.items() if k != "prompt_id"},
        "system_prompt": pa.Column(str, nullable=True),
        "gen_config": pa.Column(**STR), "gen_config_hash": pa.Column(**STR),
        "seed": pa.Column("Int64", nullable=True),
        # An empty response is a real model output (judged `failure`), not bad data: see responses_nonempty.
        "response": pa.Column(**STR),
        "finish_reason": pa.Column(**STR, checks=pa.Check.isin(["eos", "length", "recorded"])),
        "n_new_tokens": pa.Column("Int64", nullable=True),
        "source": pa.Column(**STR),
        "created_at": pa.Column(**UTC),
        # Generated rows carry their cache key (gen_cache); ingested rows have none.
        "cache_key": pa.Column(str, nullable=True, required=False),
    },
    unique=["model_key", "model_version", "prompt_format", "prompt_id", "sample"], strict=True, name="generations",
)

judgments_schema = pa.DataFrameSchema(
    {
        **_KEYS,
        "judge_id": pa.Column(**STR, checks=NONEMPTY),
        "label": pa.Column(**STR, checks=pa.Check.isin(ALL_LABELS)),
        "reason": pa.Column(str, nullable=True), "scores": pa.Column(str, nullable=True),
        "judged_at": pa.Column(**UTC),
    },
    unique=["model_key", "model_version", "prompt_format", "judge_id", "prompt_id", "sample"],
    strict=True, name="judgments",
)


def generations_complete(name: str, generations: pd.DataFrame, prompt_ids: list[str], samples: int,
                         formats: list[str] | None = None) -> CheckOutcome:
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
