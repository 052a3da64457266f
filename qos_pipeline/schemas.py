"""pandera schemas for every DataFrame an asset writes, and the row-level checks that protect them."""

from __future__ import annotations


import pandera.pandas as pa

from qos_pipeline.generation.checks import ROW_KEYS
from qos_pipeline.prompts.checks import NONEMPTY, STR, UTC
from qos_pipeline.taxonomy import ALL_LABELS



judgments_schema = pa.DataFrameSchema(
    {
        **ROW_KEYS,
        "judge_id": pa.Column(**STR, checks=NONEMPTY),
        "label": pa.Column(**STR, checks=pa.Check.isin(ALL_LABELS)),
        "reason": pa.Column(str, nullable=True), "scores": pa.Column(str, nullable=True),
        "judged_at": pa.Column(**UTC),
    },
    unique=["model_key", "model_version", "prompt_format", "judge_id", "prompt_id", "sample"],
    strict=True, name="judgments",
)


