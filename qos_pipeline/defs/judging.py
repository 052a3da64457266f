"""The judging assets: ``judgments`` (one partition per model x group, every configured judge) and
``judge_validations`` (each configured judge against human-labelled files)."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from qos_pipeline.checks import CheckOutcome
from qos_pipeline.defs.automation import REFRESH
from qos_pipeline.defs.checks import column_schema, counts, failing_clearly, materialized, merge, specs, stop_if_blocked
from qos_pipeline.defs.config import JudgmentsConfig, ValidationConfig
from qos_pipeline.defs.executors import JUDGE_STEP_TAGS
from qos_pipeline.defs.partitions import model_group_partitions, split_key
from qos_pipeline.defs.resources import AuditSettings, Storage
from qos_pipeline.defs.sources import judge_definitions
from qos_pipeline.judging import checks, step
from qos_pipeline.judging.evaluation.evaluate import evaluate, stage
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.judging.step import judge_partition, stale_judgment_files
from qos_pipeline.processes import pause_point
from qos_pipeline.provenance import code_digest
from qos_pipeline.staging import partition_file, read_partition, write_partition, writer_lock
from qos_pipeline.tables.checks import JUDGE_VALIDATIONS_ERROR_GAPS, JUDGE_VALIDATIONS_FIGURES_IN_RANGE


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"python", "parquet"},
          deps=["generations", judge_definitions], op_tags=JUDGE_STEP_TAGS, automation_condition=REFRESH,
          code_version=code_digest(step, checks),
          check_specs=specs("judgments", model_group_partitions), metadata=column_schema("judgments"))
@failing_clearly
def judgments(context: dg.AssetExecutionContext, config: JudgmentsConfig, storage: Storage,
              audit: AuditSettings) -> Iterator:
    """Six-way taxonomy label (answer, partial answer, harmful answer, refusal, harmful refusal, failure,
    or ``unjudged``) for each generation of one model x group, by each configured judge (``rules``,
    ``llm:<model>``, ``learned:<name>``, ``ensemble:...``), with per-label scores where the judge has them.
    A judge whose id and input generation rows are unchanged is not re-run: its stored file is kept. Files
    of judges not run this time that labelled replaced responses are deleted (they judged other outputs).
    Grain: one row per (generation_id, judge_id). A partition whose ``generations`` is Missing (e.g. a group
    a recorded file has no names of) stays Missing too."""
    model, group = split_key(context)
    paths = storage.paths()
    gens = read_partition(partition_file(paths.staging, "generations", group, model), f"generations[{model}|{group}]")
    outcomes: list[CheckOutcome] = []
    frames, reused, extra = {}, [], {}
    for spec in config.judges or audit.judge_specs():
        judge_impl = get_judge(spec, paths)
        stored = partition_file(paths.staging, "judgments", group, model, judge_impl.judge_id)
        df, checks, was_reused = judge_partition(gens, judge_impl, context.run_id, stored)
        frames[judge_impl.judge_id], outcomes = df, outcomes + checks
        if was_reused:
            reused.append(judge_impl.judge_id)
        agreement = getattr(judge_impl, "agreement", None)
        if agreement and not was_reused:  # ensembles: kappa between members
            extra[f"agreement/{judge_impl.judge_id}"] = dg.MetadataValue.json(
                {k: None if v != v else v for k, v in agreement.items()})  # NaN (no items) -> null
    outcomes = merge(outcomes, list(frames))
    yield from stop_if_blocked(context, f"judgments[{model}|{group}]", outcomes)
    with writer_lock(paths.staging, f"judgments[{model}|{group}]", notify=context.log.warning):
        for judge_id, df in frames.items():  # one locked section: a build sees all of a partition's files or none
            if judge_id not in reused:
                write_partition(df, partition_file(paths.staging, "judgments", group, model, judge_id))
        folder = partition_file(paths.staging, "judgments", group, model).parent
        dropped = stale_judgment_files(folder, gens, keep=set(frames))
        for file in dropped:
            file.unlink()
    pause_point("judgments:written")
    all_rows = pd.concat(frames.values())
    yield materialized(outcomes, {
        "rows": len(all_rows), "judges": ", ".join(frames), "labels": counts(all_rows, "label"),
        "reused (unchanged)": ", ".join(reused) or "none", **extra, "dagster/row_count": len(all_rows),
        "dropped (labelled replaced responses)": ", ".join(f.stem for f in dropped) or "none"})




def _in_range(reports: list[dict]) -> CheckOutcome:
    bad = [f"{r['judge_id']}@{r['dataset']}" for r in reports
           if not all(0 <= r[k] <= 1 for k in ("accuracy", "macro_f1")) or r["n"] < 1]
    return CheckOutcome(JUDGE_VALIDATIONS_FIGURES_IN_RANGE, not bad,
                        f"{len(reports)} validations; out of range: {bad or 'none'}", {"validations": len(reports)})


def _gaps(reports: list[dict]) -> CheckOutcome:
    """Warning: on some measure, a group's judge error differs from the reference group's enough to change
    its gap (each flag names the measure and the group)."""
    flags = [f"{r['judge_id']}: {f['text']}" for r in reports for f in r["flags"]]
    return CheckOutcome(JUDGE_VALIDATIONS_ERROR_GAPS, not flags, f"{len(flags)} (measure, group) pair(s) flagged",
                        {"flags": "\n".join(flags) or "none"})


@dg.asset(group_name="warehouse", kinds={"python", "parquet"},
          check_specs=specs("judge_validations"), metadata=column_schema("judge_validations"))
@failing_clearly
def judge_validations(context: dg.AssetExecutionContext, config: ValidationConfig, storage: Storage,
                      audit: AuditSettings) -> Iterator:
    """Each configured judge compared with human labels: accuracy, macro-F1, Cohen's kappa, refusal-vs-not
    F1 (with template-cluster intervals), per-label precision/recall and the confusion matrix, overall and
    per name group, and per measure (any refusal, refusal, harmful refusal, harmful answer) the judge's
    sensitivity, specificity and the error it adds to each group's gap, flagged where it could change it. Grain: one
    row per (judge, labelled file, group) in ``judge_validations``;
    ``refusal_rates_corrected`` uses these error rates at the next ``metric_tables`` build. Run config
    ``outputs_of`` records whose outputs the files hold (column ``outputs_model``)."""
    files, paths = config.files or audit.files(), storage.paths()
    judges, reference = config.judges or audit.judge_specs(), audit.reference(paths)
    try:
        evaluations = [evaluate(Path(file), spec, paths, reference, limit=config.limit or None, seed=config.seed,
                                run_id=context.run_id, outputs_of=config.outputs_of or None)
                       for file in files for spec in judges]
    except FileNotFoundError as exc:
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}") from exc
    reports = [ev.report for ev in evaluations]
    outcomes = [_in_range(reports), _gaps(reports)]
    yield from stop_if_blocked(context, "judge_validations", outcomes)
    with writer_lock(paths.staging, "judge_validations", notify=context.log.warning):
        staged = [path for ev in evaluations for path in stage(ev.frames, paths.staging, ev.judge_id, ev.dataset)]
    table = "\n".join(f"| {r['judge_id']} | {r['dataset']} | {r['n']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} "
                      f"| {r['kappa']:.3f} | {r['refusal_f1']:.3f} |" for r in reports)
    summary = "| judge | data | n | accuracy | macro-F1 | kappa | refusal F1 |\n|---|---|---|---|---|---|---|\n" + table
    yield materialized(outcomes, {
        "files": ", ".join(files) or "none configured (run config files, or QOS_VALIDATION_FILES)",
        "validations": dg.MetadataValue.md(summary if reports else "none"), "staged": len(staged)})
