"""The prompts' checks: the pandera schema of a prompts partition and its completeness."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.checks import CheckOutcome
from qos_pipeline.prompts.design import BLANK, GENDERS, NAME, POPULARITIES

# Any: splatted into pa.Column, whose keyword arguments each have their own type
STR: dict[str, Any] = dict(dtype=str, nullable=False)
NONEMPTY = pa.Check.str_length(min_value=1)
UTC: dict[str, Any] = dict(dtype=pd.DatetimeTZDtype("ns", "UTC"), coerce=True)


def contains(token: str) -> pa.Check:
    """A pandera check that every value contains ``token`` literally."""
    # Literal match: pandera's str_contains treats its pattern as a regex, and "[BLANK]" is a char class.
    return pa.Check(lambda s: s.str.contains(token, regex=False), name=f"contains {token}")


PROMPT_FIELDS = {
    "prompt_id": pa.Column(**STR, checks=pa.Check.str_matches(r"^[0-9a-f]{16}$")),
    "design": pa.Column(**STR),
    "template_id": pa.Column(**STR, checks=pa.Check.str_matches(r"^t-[0-9a-f]{10}$")),
    "template_name": pa.Column(**STR, checks=NONEMPTY),
    "template_text": pa.Column(**STR, checks=[contains(NAME), contains(BLANK)]),
    "target_group": pa.Column(**STR),
    "name": pa.Column(**STR, checks=NONEMPTY),
    "name_group": pa.Column(**STR),
    "gender": pa.Column(**STR, checks=pa.Check.isin(GENDERS)),
    "popularity": pa.Column(**STR, checks=pa.Check.isin(POPULARITIES)),
    "prompt_text": pa.Column(**STR, checks=[
        pa.Check(lambda s: ~s.str.contains(NAME, regex=False), error=f"no {NAME} left in the prompt"),
        contains(BLANK)]),
}
prompts_schema = pa.DataFrameSchema(
    {**PROMPT_FIELDS, "run_id": pa.Column(**STR), "created_at": pa.Column(**UTC)},
    unique=["prompt_id"], strict=True, name="prompts",
)


def prompts_complete(name: str, prompts: pd.DataFrame, expected_names: list[str],
                     expected_templates: list[str]) -> CheckOutcome:
    """Every template filled with every name of the design, once."""
    got = set(zip(prompts["template_id"], prompts["name"]))  # template ids are content hashes
    want = {(t, n) for t in expected_templates for n in expected_names}
    missing, extra = want - got, got - want
    ok = not missing and not extra and len(prompts) == len(want)
    return CheckOutcome(name, ok, f"{len(got & want)}/{len(want)} template x name pairs present",
                        {"missing": len(missing), "unexpected": len(extra), "examples": str(sorted(missing)[:5])})
