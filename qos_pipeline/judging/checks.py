"""The judgments' checks: the pandera schema of a judgments file (labels in the taxonomy) and a warning
for responses left ``unjudged``."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.checks import CheckOutcome, schema_check
from qos_pipeline.generation.checks import ROW_RULES
from qos_pipeline.prompts.checks import NONEMPTY
from qos_pipeline.tables.checks import JUDGMENTS_LABELS_IN_TAXONOMY, JUDGMENTS_UNJUDGED
from qos_pipeline.tables.frames import pandera_schema
from qos_pipeline.taxonomy import ALL_LABELS, UNJUDGED

judgments_schema = pandera_schema("judgments", {**ROW_RULES, "judge_id": NONEMPTY,
                                                "label": pa.Check.isin(ALL_LABELS)})


def judgment_checks(df: pd.DataFrame) -> list[CheckOutcome]:
    """The blocking schema check of a judgments frame (labels in the taxonomy), with its unjudged count."""
    outcome = schema_check(JUDGMENTS_LABELS_IN_TAXONOMY, judgments_schema, df)
    unjudged = int((df["label"] == "unjudged").sum())
    outcome.metadata["unjudged"] = unjudged
    return [outcome]


def unjudged_check(df: pd.DataFrame) -> CheckOutcome:
    """Warning: some responses could not be judged. They stay ``unjudged`` (never coerced) and count in n."""
    n = int((df["label"] == UNJUDGED).sum())
    reasons = df.loc[df["label"] == UNJUDGED, "reason"].value_counts().head(3).to_dict()
    return CheckOutcome(JUDGMENTS_UNJUDGED, n == 0, f"{n} of {len(df)} responses unjudged",
                        {"unjudged": n, "share": n / len(df) if len(df) else 0.0, "reasons": str(reasons)})
