"""Check outcomes of the stages as Dagster asset checks: specs, results, and the guard that records every
check and then stops a step before it writes when a blocking check failed.

Assets are generators: ``yield from checked(...)`` emits every check result first (the UI shows the
failing counts even when the step then fails), and only then raises when a blocking check failed; the
staged data is written after that, so a blocked step never replaces good stored data."""

import functools
from typing import Iterator

import dagster as dg
import pandas as pd

from qos_pipeline.checks import BlockedError, CheckOutcome, raise_if_blocked
from qos_pipeline.staging import WarehouseError

# Warnings, not stops: the data is kept and the count shown (e.g. unjudged rows are counted, never coerced).
WARN_ONLY = {"generations_responses_nonempty", "judgments_unjudged", "metric_tables_reference_group_present",
             "metric_tables_no_orphan_judgments", "metric_tables_one_config_per_model", "metric_tables_partitions_judged",
             "metric_tables_design_complete"}


def specs(asset: str, names: list[str]) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(n, asset=asset, blocking=n not in WARN_ONLY) for n in names]


def results(outcomes: list[CheckOutcome]) -> list[dg.AssetCheckResult]:
    return [dg.AssetCheckResult(
        check_name=o.name, passed=o.passed, description=o.description,
        severity=dg.AssetCheckSeverity.ERROR if o.blocking else dg.AssetCheckSeverity.WARN,
        metadata={k: v if isinstance(v, (int, float)) else str(v) for k, v in o.metadata.items()},
    ) for o in outcomes]


def checked(what: str, outcomes: list[CheckOutcome]) -> Iterator[dg.AssetCheckResult]:
    """Yield every outcome as a check result, then stop the step if a blocking one failed."""
    yield from results(outcomes)
    try:
        raise_if_blocked(what, outcomes)
    except BlockedError as exc:
        raise dg.Failure(description=str(exc)) from None


def failing_clearly(fn):
    """Our errors (bad design, unknown model, missing or corrupt partition) already say what to do:
    show that message as the step's failure instead of a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except (ValueError, WarehouseError) as exc:
            raise dg.Failure(description=f"{type(exc).__name__}: {exc}") from exc
    return wrapper


def counts(df: pd.DataFrame, column: str) -> dg.MetadataValue:
    return tally(column, df[column].value_counts())


def tally(column: str, numbers: pd.Series) -> dg.MetadataValue:
    """``numbers`` (value -> count, most frequent first) as a markdown table of ``column`` and ``count``."""
    return dg.MetadataValue.md(numbers.rename("count").rename_axis(column).reset_index().to_markdown(index=False))


def merge(outcomes: list[CheckOutcome], judge_ids: list[str]) -> list[CheckOutcome]:
    """One result per check, whichever number of judges ran it (each judge yields every check, in order)."""
    merged = []
    for name in dict.fromkeys(o.name for o in outcomes):
        mine = [o for o in outcomes if o.name == name]
        merged.append(CheckOutcome(
            name, all(o.passed for o in mine), "; ".join(f"{j}: {o.description}" for j, o in zip(judge_ids, mine)),
            {f"{j}/{k}": v for j, o in zip(judge_ids, mine) for k, v in o.metadata.items()}, mine[0].blocking))
    return merged
