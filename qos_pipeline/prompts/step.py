"""The prompts stage as the asset runs it: render one group's prompts, then check them."""

from __future__ import annotations

import pandas as pd

from qos_pipeline.checks import CheckOutcome, schema_check
from qos_pipeline.prompts.checks import prompts_complete, prompts_schema
from qos_pipeline.prompts.design import Design, render_prompts
from qos_pipeline.provenance import utc_now
from qos_pipeline.tables.checks import PROMPTS_COMPLETE, PROMPTS_SCHEMA


def build_prompts(design: Design, group: str, run_id: str) -> tuple[pd.DataFrame, list[CheckOutcome]]:
    """The prompts of one group: every template of the design filled with every name of the group."""
    df = render_prompts(design, group)
    df["run_id"], df["created_at"] = run_id, utc_now()
    names = design.names.loc[design.names["name_group"] == group, "name"].tolist()
    return df, [
        schema_check(PROMPTS_SCHEMA, prompts_schema, df),
        prompts_complete(PROMPTS_COMPLETE, df, names, design.templates["template_id"].tolist()),
    ]
