"""pandera schemas for every DataFrame an asset writes, and the row-level checks that protect them."""

from __future__ import annotations


import pandas as pd
import pandera.pandas as pa

from qos_pipeline.design import BLANK, GENDERS, NAME, POPULARITIES
from qos_pipeline.taxonomy import ALL_LABELS
from qos_pipeline.checks import CheckOutcome

_str = dict(dtype=str, nullable=False)
_nonempty = pa.Check.str_length(min_value=1)
_utc = dict(dtype=pd.DatetimeTZDtype("ns", "UTC"), coerce=True)


def _contains(token: str) -> pa.Check:
    # Literal match: pandera's str_contains treats its pattern as a regex, and "[BLANK]" is a char class.
    return pa.Check(lambda s: s.str.contains(token, regex=False), name=f"contains {token}")


PROMPT_COLUMNS = {
    "prompt_id": pa.Column(**_str, checks=pa.Check.str_matches(r"^[0-9a-f]{16}$")),
    "design": pa.Column(**_str),
    "template_id": pa.Column(**_str, checks=_nonempty),
    "template_text": pa.Column(**_str, checks=[_contains(NAME), _contains(BLANK)]),
    "target_group": pa.Column(**_str),
    "name": pa.Column(**_str, checks=_nonempty),
    "name_group": pa.Column(**_str),
    "gender": pa.Column(**_str, checks=pa.Check.isin(GENDERS)),
    "popularity": pa.Column(**_str, checks=pa.Check.isin(POPULARITIES)),
    "prompt_text": pa.Column(**_str, checks=[
        pa.Check(lambda s: ~s.str.contains(NAME, regex=False), error=f"no {NAME} left in the prompt"),
        _contains(BLANK)]),
}
_KEYS = {
    "model_key": pa.Column(**_str, checks=pa.Check.str_matches(r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    "model_version": pa.Column(**_str, checks=_nonempty),
    "prompt_format": pa.Column(**_str, checks=_nonempty),
    "prompt_id": PROMPT_COLUMNS["prompt_id"],
    "sample": pa.Column(int, checks=pa.Check.ge(0)),
    "run_id": pa.Column(**_str),
}

prompts_schema = pa.DataFrameSchema(
    {**PROMPT_COLUMNS, "run_id": _KEYS["run_id"], "created_at": pa.Column(**_utc)},
    unique=["prompt_id"], strict=True, name="prompts",
)

generations_schema = pa.DataFrameSchema(
    {
        **_KEYS, **{k: v for k, v in PROMPT_COLUMNS.items() if k != "prompt_id"},
        "system_prompt": pa.Column(str, nullable=True),
        "gen_config": pa.Column(**_str), "gen_config_hash": pa.Column(**_str),
        "seed": pa.Column("Int64", nullable=True),
        # An empty response is a real model output (judged `failure`), not bad data: see responses_nonempty.
        "response": pa.Column(**_str),
        "finish_reason": pa.Column(**_str, checks=pa.Check.isin(["eos", "length", "recorded"])),
        "n_new_tokens": pa.Column("Int64", nullable=True),
        "source": pa.Column(**_str),
        "created_at": pa.Column(**_utc),
        # Generated rows carry their cache key (gen_cache); ingested rows have none.
        "cache_key": pa.Column(str, nullable=True, required=False),
    },
    unique=["model_key", "model_version", "prompt_format", "prompt_id", "sample"], strict=True, name="generations",
)

judgments_schema = pa.DataFrameSchema(
    {
        **_KEYS,
        "judge_id": pa.Column(**_str, checks=_nonempty),
        "label": pa.Column(**_str, checks=pa.Check.isin(ALL_LABELS)),
        "reason": pa.Column(str, nullable=True), "scores": pa.Column(str, nullable=True),
        "judged_at": pa.Column(**_utc),
    },
    unique=["model_key", "model_version", "prompt_format", "judge_id", "prompt_id", "sample"],
    strict=True, name="judgments",
)


def prompts_complete(name: str, prompts: pd.DataFrame, expected_names: list[str], expected_templates: list[str]) -> CheckOutcome:
    """Every template filled with every name of the design, once."""
    got = set(zip(prompts["template_id"], prompts["name"]))
    want = {(t, n) for t in expected_templates for n in expected_names}
    missing, extra = want - got, got - want
    ok = not missing and not extra and len(prompts) == len(want)
    return CheckOutcome(name, ok, f"{len(got & want)}/{len(want)} template x name pairs present",
                        {"missing": len(missing), "unexpected": len(extra), "examples": str(sorted(missing)[:5])})


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
