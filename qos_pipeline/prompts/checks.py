"""The prompts' checks: the pandera schema of a prompts partition and its completeness."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.checks import CheckOutcome
from qos_pipeline.prompts.design import BLANK, GENDERS, NAME, POPULARITIES
from qos_pipeline.tables.frames import pandera_schema

NONEMPTY = pa.Check.str_length(min_value=1)


def contains(token: str) -> pa.Check:
    """A pandera check that every value contains ``token`` literally."""
    # Literal match: pandera's str_contains treats its pattern as a regex, and "[BLANK]" is a char class.
    return pa.Check(lambda s: s.str.contains(token, regex=False), name=f"contains {token}")


PROMPT_RULES = {
    "prompt_id": pa.Check.str_matches(r"^[0-9a-f]{16}$"),
    "template_id": pa.Check.str_matches(r"^t-[0-9a-f]{10}$"),
    "template_name": NONEMPTY,
    "template_text": [contains(NAME), contains(BLANK)],
    "name": NONEMPTY,
    "gender": pa.Check.isin(GENDERS),
    "popularity": pa.Check.isin(POPULARITIES),
    "prompt_text": [pa.Check(lambda s: ~s.str.contains(NAME, regex=False), error=f"no {NAME} left in the prompt"),
                    contains(BLANK)],
}
"""The value rules of the prompt's columns (the generations carry them too); types and nullability are the
table's declaration (``qos_pipeline/tables``)."""
prompts_schema = pandera_schema("prompts", PROMPT_RULES)


def prompts_complete(name: str, prompts: pd.DataFrame, expected_names: list[str],
                     expected_templates: list[str]) -> CheckOutcome:
    """Every template filled with every name of the design, once."""
    got = set(zip(prompts["template_id"], prompts["name"]))  # template ids are content hashes
    want = {(t, n) for t in expected_templates for n in expected_names}
    missing, extra = want - got, got - want
    ok = not missing and not extra and len(prompts) == len(want)
    return CheckOutcome(name, ok, f"{len(got & want)}/{len(want)} template x name pairs present",
                        {"missing": len(missing), "unexpected": len(extra), "examples": str(sorted(missing)[:5])})
