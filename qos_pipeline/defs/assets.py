"""The audit's assets: prompts -> generations -> judgments -> metric tables (DuckDB).

Each asset is a thin layer over ``qos_pipeline.pipeline``: it runs the step, runs the step's checks on the
new data *before* writing, writes its partition's staged Parquet only when every blocking check passed,
and reports the checks where the data is written.
"""


import functools
import warnings

import dagster as dg
import pandas as pd

from qos_pipeline import pipeline, warehouse
from qos_pipeline.design import load_design
from qos_pipeline.judges import get_judge
from qos_pipeline.schemas import CheckOutcome
from qos_pipeline.defs.partitions import group_partitions, model_group_partitions, split_key
from qos_pipeline.defs.resources import AuditConfig, GeneratorResource

PROMPT_CHECKS = ["prompts_schema", "prompts_complete"]
GENERATION_CHECKS = ["generations_schema", "generations_complete", "generations_responses_nonempty"]
JUDGMENT_CHECKS = ["judgments_labels_in_taxonomy"]
METRIC_CHECKS = ["metric_tables_rates_in_range", "metric_tables_rates_sum_to_one", "metric_tables_labels_in_taxonomy",
                 "metric_tables_groups_present", "metric_tables_reference_group_present"]


with warnings.catch_warnings():  # beta API, but the documented way to map model x group -> group
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_GROUP = dg.MultiToSingleDimensionPartitionMapping("group")

WARN_ONLY = {"generations_responses_nonempty", "metric_tables_reference_group_present"}


def _specs(asset: str, names: list[str]) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(n, asset=asset, blocking=n not in WARN_ONLY) for n in names]


def _results(outcomes: list[CheckOutcome]) -> list[dg.AssetCheckResult]:
    return [dg.AssetCheckResult(
        check_name=o.name, passed=o.passed, description=o.description,
        severity=dg.AssetCheckSeverity.ERROR if o.blocking else dg.AssetCheckSeverity.WARN,
        metadata={k: v if isinstance(v, (int, float)) else str(v) for k, v in o.metadata.items()},
    ) for o in outcomes]


def _guard(what: str, outcomes: list[CheckOutcome]) -> None:
    """Stop before writing when a blocking check fails, so stored data stays as it was."""
    try:
        pipeline.raise_if_blocked(what, outcomes)
    except pipeline.BlockedError as exc:
        raise dg.Failure(description=str(exc)) from None


def _failing_clearly(fn):
    """Our errors (bad design, unknown model, missing or corrupt partition) already say what to do:
    show that message as the step's failure instead of a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, warehouse.WarehouseError) as exc:
            raise dg.Failure(description=f"{type(exc).__name__}: {exc}") from exc
    return wrapper


def _counts(df: pd.DataFrame, column: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(df[column].value_counts().rename_axis(column).reset_index().to_markdown(index=False))


@dg.asset(partitions_def=group_partitions, group_name="audit", kinds={"python", "parquet"},
          check_specs=_specs("prompts", PROMPT_CHECKS))
@_failing_clearly
def prompts(context: dg.AssetExecutionContext, audit: AuditConfig) -> dg.MaterializeResult:
    """Non-toxic fill-in-the-blank prompts of one name group: every template of the configured design
    filled with every name of the group. Grain: one row per (template, name); key ``prompt_id``."""
    group, paths = context.partition_key, audit.paths()
    design = load_design(audit.design, paths.assets)
    df, outcomes = pipeline.build_prompts(design, group, context.run_id)
    _guard(f"prompts[{group}]", outcomes)
    path = warehouse.write_partition(df, warehouse.partition_file(paths.staging, "prompts", group))
    return dg.MaterializeResult(
        metadata={"rows": len(df), "design": design.name, "path": str(path), "dagster/row_count": len(df)},
        check_results=_results(outcomes))


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"pytorch", "parquet"}, pool="gpu",
          deps=[dg.AssetDep("prompts", partition_mapping=BY_GROUP)],
          check_specs=_specs("generations", GENERATION_CHECKS))
@_failing_clearly
def generations(context: dg.AssetExecutionContext, audit: AuditConfig, generator: GeneratorResource
                ) -> dg.MaterializeResult:
    """Chat-model outputs for one model x group: ``samples`` generations per prompt with the paper's
    system prompt through the tokenizer's chat template, seeded per (prompt, sample).
    Grain: one row per (prompt_id, sample) with model version, prompt format and sampling provenance."""
    model, group = split_key(context)
    paths = audit.paths()
    prompts_df = warehouse.read_partition(warehouse.partition_file(paths.staging, "prompts", group), f"prompts[{group}]")
    gen = generator.build(model, paths)
    df, outcomes = pipeline.generate(
        prompts_df, gen, audit.sampling(), audit.samples, audit.seed, audit.batch_size, context.run_id,
        progress=lambda done, total: context.log.info(f"generations[{model}|{group}]: {done}/{total} rows"))
    _guard(f"generations[{model}|{group}]", outcomes)
    path = warehouse.write_partition(df, warehouse.partition_file(paths.staging, "generations", group, model))
    return dg.MaterializeResult(
        metadata={"rows": len(df), "model_version": gen.model_version, "prompt_format": gen.prompt_format,
                  "finish_reasons": _counts(df, "finish_reason"), "path": str(path), "dagster/row_count": len(df)},
        check_results=_results(outcomes))


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"python", "parquet"},
          deps=["generations"], check_specs=_specs("judgments", JUDGMENT_CHECKS))
@_failing_clearly
def judgments(context: dg.AssetExecutionContext, audit: AuditConfig) -> dg.MaterializeResult:
    """Six-way taxonomy label (answer, partial answer, harmful answer, refusal, harmful refusal, failure,
    or ``unjudged``) for each generation of one model x group, by each configured judge.
    Grain: one row per (prompt_id, sample, judge_id)."""
    model, group = split_key(context)
    paths = audit.paths()
    gens = warehouse.read_partition(warehouse.partition_file(paths.staging, "generations", group, model),
                                    f"generations[{model}|{group}]")
    frames, outcomes = {}, []
    for judge_id in audit.judges:
        judge_impl = get_judge(judge_id)
        frames[judge_impl.judge_id], checks = pipeline.judge(gens, judge_impl, context.run_id)
        outcomes += checks
    _guard(f"judgments[{model}|{group}]", outcomes)
    for judge_id, df in frames.items():
        warehouse.write_partition(df, warehouse.partition_file(paths.staging, "judgments", group, model, judge_id))
    all_rows = pd.concat(frames.values())
    return dg.MaterializeResult(
        metadata={"rows": len(all_rows), "judges": ", ".join(frames), "labels": _counts(all_rows, "label"),
                  "dagster/row_count": len(all_rows)},
        check_results=_results([_merge(outcomes, list(frames))]))


def _merge(outcomes: list[CheckOutcome], judge_ids: list[str]) -> CheckOutcome:
    """One result for the taxonomy check, whichever number of judges ran it."""
    return CheckOutcome(
        outcomes[0].name, all(o.passed for o in outcomes), "; ".join(o.description for o in outcomes),
        {f"{j}/{k}": v for j, o in zip(judge_ids, outcomes) for k, v in o.metadata.items()})


@dg.asset(group_name="warehouse", kinds={"duckdb"}, pool="duckdb_writer", deps=["judgments"],
          check_specs=_specs("metric_tables", METRIC_CHECKS))
@_failing_clearly
def metric_tables(context: dg.AssetExecutionContext, audit: AuditConfig) -> dg.MaterializeResult:
    """All tables of ``warehouse/qos.duckdb``, rebuilt from every staged partition and published only
    when the Great Expectations suites pass: label_rates_{model,group,name,popularity,gender,template}
    (share of each label per model x prompt format x judge x cell, with Wilson 95% CIs) and
    disparities (refusal rates per group vs the reference group)."""
    paths = audit.paths()
    try:
        counts, outcomes = pipeline.rebuild_warehouse(paths.staging, paths.sql, paths.db, audit.reference_group)
    except pipeline.BlockedError as exc:
        raise dg.Failure(description=str(exc)) from None
    return dg.MaterializeResult(
        metadata={**{f"rows/{t}": n for t, n in counts.items()}, "path": str(paths.db)},
        check_results=_results(outcomes))
