"""Data-quality check outcomes, independent of Dagster (``defs`` turns them into asset check results).

A stage returns its frame together with the outcomes of the checks that guard it; callers write nothing
when a blocking check fails, so a bad run never replaces good stored data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

from qos_pipeline.tables.checks import declared_blocking


@dataclass
class CheckOutcome:
    """The result of one data-quality check; whether it blocks is the check's declaration
    (``tables/checks.py``), or True for an undeclared one."""

    name: str
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)
    blocking: bool = field(init=False)

    def __post_init__(self) -> None:
        self.blocking = declared_blocking(self.name)


class BlockedError(RuntimeError):
    """A blocking data-quality check failed; nothing was written. The message lists the failed checks."""

    def __init__(self, what: str, outcomes: list[CheckOutcome]):
        self.outcomes = outcomes
        failed = [f"{o.name}: {o.description} {o.metadata}" for o in outcomes if o.blocking and not o.passed]
        super().__init__(f"{what} not written, blocking checks failed:\n" + "\n".join(failed))


def raise_if_blocked(what: str, outcomes: list[CheckOutcome]) -> None:
    """Raise ``BlockedError`` when any blocking outcome failed, so nothing is written."""
    if any(o.blocking and not o.passed for o in outcomes):
        raise BlockedError(what, outcomes)


def schema_check(name: str, schema: pa.DataFrameSchema, df: pd.DataFrame) -> CheckOutcome:
    """Validate lazily so the outcome lists every failing column/check, not just the first."""
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        summary = cases.groupby(["column", "check"], dropna=False).size().reset_index(name="failures")
        return CheckOutcome(name, False, f"{schema.name}: {len(cases)} failing values",
                            {"failures": summary.head(20).to_string(index=False)})
    return CheckOutcome(name, True, f"{schema.name}: {len(df)} rows match the schema", {"rows": len(df)})
