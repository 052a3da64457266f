"""The audit's assets: prompts -> generations -> judgments -> metric tables (DuckDB).

Each asset is a thin layer over ``qos_pipeline.pipeline``: it runs the step, runs the step's checks on the
new data *before* writing, writes its partition's staged Parquet only when every blocking check passed,
and reports the checks where the data is written.
"""


import functools
import warnings

import dagster as dg
import pandas as pd

from qos_pipeline.metrics.step import rebuild_warehouse
from qos_pipeline.judging.step import judge_partition
from qos_pipeline.generation import cache
from qos_pipeline.generation.step import generate
from qos_pipeline.prompts.design import load_design
from qos_pipeline.generation.formats import select_formats
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.checks import CheckOutcome
from qos_pipeline.defs.partitions import group_partitions, model_group_partitions, split_key
from qos_pipeline.defs.executors import GPU_STEP_TAGS, judge_step_tags
from qos_pipeline.defs.resources import AuditConfig, GeneratorResource
from qos_pipeline.checks import BlockedError, raise_if_blocked
from qos_pipeline.staging import WarehouseError, partition_file, read_partition, write_partition
from qos_pipeline.prompts.step import build_prompts

PROMPT_CHECKS = ["prompts_schema", "prompts_complete"]
GENERATION_CHECKS = ["generations_schema", "generations_complete", "generations_responses_nonempty"]
JUDGMENT_CHECKS = ["judgments_labels_in_taxonomy", "judgments_unjudged"]
METRIC_CHECKS = ["metric_tables_rates_in_range", "metric_tables_rates_sum_to_one", "metric_tables_labels_in_taxonomy",
                 "metric_tables_groups_present", "metric_tables_reference_group_present",
                 "metric_tables_judge_tables_valid"]


with warnings.catch_warnings():  # beta API, but the documented way to map model x group -> group
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_GROUP = dg.MultiToSingleDimensionPartitionMapping("group")

# Warnings, not stops: the data is kept and the count shown (e.g. unjudged rows are counted, never coerced).
WARN_ONLY = {"generations_responses_nonempty", "judgments_unjudged", "metric_tables_reference_group_present"}


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
        raise_if_blocked(what, outcomes)
    except BlockedError as exc:
        raise dg.Failure(description=str(exc)) from None


def _failing_clearly(fn):
    """Our errors (bad design, unknown model, missing or corrupt partition) already say what to do:
    show that message as the step's failure instead of a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, WarehouseError) as exc:
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
    df, outcomes = build_prompts(design, group, context.run_id)
    _guard(f"prompts[{group}]", outcomes)
    path = write_partition(df, partition_file(paths.staging, "prompts", group))
    return dg.MaterializeResult(
        metadata={"rows": len(df), "design": design.name, "path": str(path), "dagster/row_count": len(df)},
        check_results=_results(outcomes))


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"pytorch", "parquet"}, pool="gpu",
          deps=[dg.AssetDep("prompts", partition_mapping=BY_GROUP)], op_tags=GPU_STEP_TAGS,
          check_specs=_specs("generations", GENERATION_CHECKS))
@_failing_clearly
def generations(context: dg.AssetExecutionContext, audit: AuditConfig, generator: GeneratorResource
                ) -> dg.MaterializeResult:
    """Chat-model outputs for one model x group: ``samples`` generations per prompt under each configured
    prompt format (chat template with the paper's system prompt by default), seeded per (prompt, sample).
    Batches are stored as they finish (a killed run resumes) and rows already generated under the same
    model version, prompt, format, sampling settings and seed are reused, not generated again.
    Grain: one row per (prompt_format, prompt_id, sample) with model version, format and sampling provenance."""
    model, group = split_key(context)
    paths = audit.paths()
    prompts_df = read_partition(partition_file(paths.staging, "prompts", group), f"prompts[{group}]")
    gen = generator.build(model, paths)
    formats = select_formats(paths.assets, audit.prompt_formats, getattr(gen, "default_prompt_format", None))
    df, outcomes = generate(
        prompts_df, gen, audit.sampling(), audit.samples, audit.seed, audit.batch_size, context.run_id,
        progress=lambda done, total: context.log.info(f"generations[{model}|{group}]: {done}/{total} rows"),
        formats=formats, cache_dir=cache.cache_folder(paths.warehouse, model, group))
    _guard(f"generations[{model}|{group}]", outcomes)
    path = write_partition(df, partition_file(paths.staging, "generations", group, model))
    fresh = int((df["run_id"] == context.run_id).sum())
    return dg.MaterializeResult(
        metadata={"rows": len(df), "generated": fresh, "reused": len(df) - fresh,
                  "model_version": gen.model_version, "prompt_formats": ", ".join(f.id for f in formats),
                  "gen_config": str(df["gen_config"].iloc[0]) if len(df) else "",
                  "finish_reasons": _counts(df, "finish_reason"), "path": str(path), "dagster/row_count": len(df)},
        check_results=_results(outcomes))


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"python", "parquet"},
          deps=["generations"], op_tags=judge_step_tags(),
          check_specs=_specs("judgments", JUDGMENT_CHECKS))
@_failing_clearly
def judgments(context: dg.AssetExecutionContext, audit: AuditConfig) -> dg.MaterializeResult:
    """Six-way taxonomy label (answer, partial answer, harmful answer, refusal, harmful refusal, failure,
    or ``unjudged``) for each generation of one model x group, by each configured judge (``rules``,
    ``llm:<model>``, ``learned:<name>``, ``ensemble:...``), with per-label scores where the judge has them.
    A judge whose id and input generation rows are unchanged is not re-run: its stored file is kept.
    Grain: one row per (prompt_id, sample, judge_id)."""
    model, group = split_key(context)
    paths = audit.paths()
    gens = read_partition(partition_file(paths.staging, "generations", group, model),
                                    f"generations[{model}|{group}]")
    frames, outcomes, reused, extra = {}, [], [], {}
    for spec in audit.judges:
        judge_impl = get_judge(spec, paths)
        stored = partition_file(paths.staging, "judgments", group, model, judge_impl.judge_id)
        df, checks, was_reused = judge_partition(gens, judge_impl, context.run_id, stored)
        frames[judge_impl.judge_id], outcomes = df, outcomes + checks
        if was_reused:
            reused.append(judge_impl.judge_id)
        if getattr(judge_impl, "agreement", None) and not was_reused:  # ensembles: kappa between members
            extra[f"agreement/{judge_impl.judge_id}"] = dg.MetadataValue.json(
                {k: None if v != v else v for k, v in judge_impl.agreement.items()})  # NaN (no items) -> null
    _guard(f"judgments[{model}|{group}]", outcomes)
    for judge_id, df in frames.items():
        if judge_id not in reused:
            write_partition(df, partition_file(paths.staging, "judgments", group, model, judge_id))
    all_rows = pd.concat(frames.values())
    return dg.MaterializeResult(
        metadata={"rows": len(all_rows), "judges": ", ".join(frames), "labels": _counts(all_rows, "label"),
                  "reused (unchanged)": ", ".join(reused) or "none", **extra, "dagster/row_count": len(all_rows)},
        check_results=_results(_merge(outcomes, list(frames))))


def _merge(outcomes: list[CheckOutcome], judge_ids: list[str]) -> list[CheckOutcome]:
    """One result per check, whichever number of judges ran it (each judge yields every check, in order)."""
    merged = []
    for name in dict.fromkeys(o.name for o in outcomes):
        mine = [o for o in outcomes if o.name == name]
        merged.append(CheckOutcome(
            name, all(o.passed for o in mine), "; ".join(f"{j}: {o.description}" for j, o in zip(judge_ids, mine)),
            {f"{j}/{k}": v for j, o in zip(judge_ids, mine) for k, v in o.metadata.items()}, mine[0].blocking))
    return merged


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
        counts, outcomes = rebuild_warehouse(paths.staging, paths.db, audit.reference_group)
    except BlockedError as exc:
        raise dg.Failure(description=str(exc)) from None
    return dg.MaterializeResult(
        metadata={**{f"rows/{t}": n for t, n in counts.items()}, "path": str(paths.db)},
        check_results=_results(outcomes))
