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

# Warnings, not stops: the data is kept and the count shown (e.g. unjudged rows are counted, never coerced).
WARN_ONLY = {"generations_responses_nonempty", "judgments_unjudged", "judge_validations_error_gaps",
             "metric_tables_reference_group_present", "metric_tables_no_orphan_judgments",
             "metric_tables_one_config_per_model", "metric_tables_partitions_judged", "metric_tables_design_complete",
             "metric_tables_checkpoint_regression"}

DESCRIPTIONS = {
    "prompts_schema": "Every prompt row matches the prompts schema: ids are content hashes (prompt_id unique), "
                      "the name is filled in and [BLANK] left, gender and popularity known.",
    "prompts_complete": "Every template of the design is filled with every name of the group, once: no pair "
                        "missing, none unexpected.",
    "generations_schema": "Every output row matches the generations schema: keys and provenance present, "
                          "generation_id unique, finish_reason eos, length or recorded, a recorded human label in "
                          "the taxonomy.",
    "generations_complete": "One output per (prompt format, prompt, sample) of the partition: nothing lost, "
                            "nothing duplicated.",
    "generations_responses_nonempty": "Warning: empty responses are kept and judged (as failure) but counted "
                                      "here, e.g. a broken chat template.",
    "judgments_labels_in_taxonomy": "Every judgment has a label of the taxonomy (or unjudged), a judge id and "
                                    "the generation_id it labelled; one label per judge and output.",
    "judgments_unjudged": "Warning: outputs a judge could not decide stay unjudged (never coerced) and count "
                          "in every denominator; the count and the commonest reasons.",
    "judge_validations_figures_in_range": "Each judge's figures against human labels are in range (accuracy "
                                          "and macro-F1 in [0, 1], at least one labelled row).",
    "judge_validations_error_gaps": "Warning: on some measure, a group's judge error differs from the "
                                    "reference group's enough to change its gap; each flag names the measure "
                                    "and the group.",
    "metric_tables_rates_in_range": "Rates and every interval in [0, 1], each interval around its rate, n >= 1.",
    "metric_tables_rates_sum_to_one": "The label rates of each cell of every label_rates_* table sum to 1.",
    "metric_tables_labels_in_taxonomy": "Every counted label is in the taxonomy and has a judge id.",
    "metric_tables_groups_present": "Every judge with counted labels for a model covers every group of that "
                                    "model that some judge has labelled; a failure lists the missing model x "
                                    "judge x group.",
    "metric_tables_comparisons_valid": "Group and model comparisons: p-values and adjusted p-values in [0, 1], "
                                       "adjusted >= raw, each gap inside its interval.",
    "metric_tables_judge_tables_valid": "Judge validation figures and corrected rates in range; each corrected "
                                        "rate inside its interval.",
    "metric_tables_partitions_judged": "Warning: generations partitions no judge has labelled yet (e.g. another "
                                       "run between its generations and judgments steps); in no rate until "
                                       "their judgments are staged and the next build runs.",
    "metric_tables_one_config_per_model": "Warning: a model's groups were generated under several sampling "
                                          "configs or designs; each config is its own cell.",
    "metric_tables_no_orphan_judgments": "Warning: stored labels of replaced responses, which are not counted.",
    "metric_tables_reference_group_present": "Warning: cells without the reference group, whose gaps are NULL.",
    "metric_tables_design_complete": "Warning: cells whose template x name grid is incomplete, per group (names, "
                                     "templates, missing prompts); their comparisons use the templates both "
                                     "groups share and say so.",
    "metric_tables_checkpoint_regression": "Regression gate (never stops the build; warning unless QOS_GATE_SEVERITY="
                                           "error): the newest checkpoint of each checkpoint family fails when a "
                                           "group's primary gap vs the reference group grew against the previous "
                                           "checkpoint with an adjusted paired p below QOS_GATE_LEVEL (0.05), or "
                                           "exceeds QOS_GATE_CEILING; names the group, the change with its interval "
                                           "and outputs that changed label.",
}
"""What each check tests, shown as its description in the UI (the README and warehouse/README.md say the same)."""


def specs(asset: str, names: list[str], partitions_def: dg.PartitionsDefinition | None = None
          ) -> list[dg.AssetCheckSpec]:
    """The checks of ``asset``, with descriptions; ``partitions_def``: the asset's, so that each evaluation
    records the partition it checked (the UI then shows a check's status per partition)."""
    with warnings.catch_warnings():  # a preview API in 1.13, but the documented way to partition a check
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [dg.AssetCheckSpec(n, asset=asset, blocking=n not in WARN_ONLY, description=DESCRIPTIONS[n],
                                  partitions_def=partitions_def) for n in names]


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
                blocking=o.name not in WARN_ONLY, partition=partition and str(partition))
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
            {f"{j}/{k}": v for j, o in zip(judge_ids, mine) for k, v in o.metadata.items()}, mine[0].blocking))
    return merged
