"""The judgments' checks: the pandera schema of a judgments file (labels in the taxonomy) and a warning
for responses left ``unjudged``."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.checks import CheckOutcome, schema_check
from qos_pipeline.generation.checks import GENERATION_ID, ROW_KEYS
from qos_pipeline.prompts.checks import NONEMPTY, STR, UTC
from qos_pipeline.taxonomy import ALL_LABELS, UNJUDGED

judgments_schema = pa.DataFrameSchema(
    {
        "generation_id": GENERATION_ID,
        **ROW_KEYS,
        "judge_id": pa.Column(**STR, checks=NONEMPTY),
        "label": pa.Column(**STR, checks=pa.Check.isin(ALL_LABELS)),
        "reason": pa.Column(str, nullable=True), "scores": pa.Column(str, nullable=True),
        "judged_at": pa.Column(**UTC),
    },
    unique=["judge_id", "generation_id"],
    strict=True, name="judgments",
)


def judgment_checks(df: pd.DataFrame) -> list[CheckOutcome]:
    """The judgments' checks: labels in the taxonomy, and the count of unjudged rows."""
    outcome = schema_check("judgments_labels_in_taxonomy", judgments_schema, df)
    unjudged = int((df["label"] == "unjudged").sum())
    outcome.metadata["unjudged"] = unjudged
    return [outcome]


def unjudged_check(df: pd.DataFrame) -> CheckOutcome:
    """Warning: some responses could not be judged. They stay ``unjudged`` (never coerced) and count in n."""
    n = int((df["label"] == UNJUDGED).sum())
    reasons = df.loc[df["label"] == UNJUDGED, "reason"].value_counts().head(3).to_dict()
    return CheckOutcome("judgments_unjudged", n == 0, f"{n} of {len(df)} responses unjudged",
                        {"unjudged": n, "share": n / len(df) if len(df) else 0.0, "reasons": str(reasons)},
                        blocking=False)
