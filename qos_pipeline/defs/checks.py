"""Check outcomes of the stages as Dagster asset checks: specs (with the README's description of each),
results tied to the materialization they checked, and the guard that stops a step before it writes when a
blocking check failed.

Each asset computes its outcomes, then ``yield from stop_if_blocked(...)``: when a blocking check failed, it
records every check result (the UI shows the failing counts even though the step then fails) against the
step's partition and no materialization (nothing was written: the stored partition keeps its previous
data), and fails the step. Otherwise the asset writes its data and yields ``materialized(outcomes, ...)``:
the materialization first and its check results after it, so each evaluation targets the materialization
of its own run and partition (results yielded before the materialization would target the partition's
previous one, or none)."""

import functools
import warnings
from collections.abc import Iterator, Sequence

import dagster as dg
import pandas as pd

from qos_pipeline.checks import BlockedError, CheckOutcome, raise_if_blocked
from qos_pipeline.staging import WarehouseError
from qos_pipeline.tables import note_of
from qos_pipeline.tables import table as declaration
from qos_pipeline.tables.checks import checks_of


def specs(asset: str, partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetCheckSpec]:
    """The checks declared for ``asset`` (``tables/checks.py``), with descriptions and blocking flags;
    ``partitions_def``: the asset's, so that each evaluation records the partition it checked (the UI then
    shows a check's status per partition)."""
    with warnings.catch_warnings():  # a preview API in 1.13, but the documented way to partition a check
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [dg.AssetCheckSpec(c.name, asset=asset, blocking=c.blocking, description=c.description,
                                  partitions_def=partitions_def) for c in checks_of(asset)]


def column_schema(table: str) -> dict[str, dg.TableSchema]:
    """The asset's ``dagster/column_schema`` metadata, from the declaration of the table it writes: each
    column's type, nullability and note, shown in the UI's asset page."""
    columns = [dg.TableColumn(c.name, c.type.lower(), description=note_of(table, c.name),
                              constraints=dg.TableColumnConstraints(nullable=not c.required))
               for c in declaration(table).columns]
    return {"dagster/column_schema": dg.TableSchema(columns=columns)}


def results(outcomes: list[CheckOutcome]) -> list[dg.AssetCheckResult]:
    """Dagster check results of ``outcomes``: a failed blocking check is an error, any other a warning."""
    return [dg.AssetCheckResult(
        check_name=o.name, passed=o.passed, description=o.description,
        severity=dg.AssetCheckSeverity.ERROR if o.blocking else dg.AssetCheckSeverity.WARN,
        metadata=_metadata(o.metadata),
    ) for o in outcomes]


def _metadata(values: dict) -> dict:
    return {k: v if isinstance(v, (int, float)) else str(v) for k, v in values.items()}


def stop_if_blocked(context: dg.AssetExecutionContext, what: str, outcomes: list[CheckOutcome]) -> Iterator:
    """When a blocking outcome failed: yield every outcome as an evaluation of this step's partition that
    targets no materialization (nothing was written), then fail the step. Otherwise yield nothing."""
    try:
        raise_if_blocked(what, outcomes)
    except BlockedError as exc:
        partition = context.partition_key if context.has_partition_key else None
        kept = "no: a blocking check failed, the stored data is the previous materialization's"
        for o in outcomes:
            yield dg.AssetCheckEvaluation(
                asset_key=context.asset_key, check_name=o.name, passed=o.passed, description=o.description,
                metadata=_metadata({**o.metadata, "written": kept}), target_materialization_data=None,
                severity=dg.AssetCheckSeverity.ERROR if o.blocking else dg.AssetCheckSeverity.WARN,
                blocking=o.blocking, partition=partition and str(partition))
        raise dg.Failure(description=str(exc)) from None


def materialized(outcomes: list[CheckOutcome], metadata: dict, extra: Sequence[dg.AssetCheckResult] = ()
                 ) -> dg.MaterializeResult:
    """The materialization of what was just written, with its check results (recorded after it, so they
    target it); ``extra``: results built by the asset itself (the regression gate)."""
    return dg.MaterializeResult(metadata=metadata, check_results=results(outcomes) + list(extra))


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
    """Metadata tallying the values of ``df[column]``."""
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
            {f"{j}/{k}": v for j, o in zip(judge_ids, mine) for k, v in o.metadata.items()}))
    return merged
