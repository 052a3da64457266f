"""Nightly refresh: re-materialize only what is stale (``qos_pipeline.staleness``), then rebuild the
metric tables.

A schedule launches runs of one job, and Dagster does not order runs among themselves, so the refresh is
four schedules a little apart (UTC): 02:00 prompts of groups whose templates or names changed; 02:30
generations + judgments of partitions whose prompts or model version changed, and judge-only runs where a
configured judge (new rubric version) has not labelled the current generations (a second schedule,
judge_job); 04:30 the metric tables,
when the DuckDB file is older than the staged data. Run keys name the inputs a run is built from, so a
tick never repeats a run for the same inputs, and a tick with nothing stale launches nothing. Off by
default; turn them on in the UI (Automation) or with ``dagster schedule start``.
"""

from __future__ import annotations

import os

import dagster as dg

from qos_pipeline import staleness
from qos_pipeline.defs.jobs import audit_job, metrics_job, prompts_job
from qos_pipeline.defs.partitions import model_group_key, model_group_partitions
from qos_pipeline.defs.resources import AuditConfig
from qos_pipeline.defs.sensors import TRIGGER_TAG, design_groups
from qos_pipeline.prompts.design import load_design
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.added import resolve

judge_job = dg.define_asset_job(
    "judge_job", selection=dg.AssetSelection.assets("judgments"), partitions_def=model_group_partitions,
    description="Re-judge the staged generations of one model x group (e.g. after a judge's rubric changed).")

CRON = {"prompts": os.environ.get("QOS_REFRESH_CRON_PROMPTS", "0 2 * * *"),
        "audit": os.environ.get("QOS_REFRESH_CRON_AUDIT", "30 2 * * *"),
        "metrics": os.environ.get("QOS_REFRESH_CRON_METRICS", "30 4 * * *")}
TAGS = {TRIGGER_TAG: "nightly_refresh"}


def _version_of(audit: AuditConfig):
    paths = audit.paths()

    def version(model: str) -> str | None:
        try:
            return resolve(model, paths).version
        except (ModelError, OSError):  # ingested outputs, or a folder no longer here: cannot regenerate
            return None
    return version


def stale_prompt_requests(audit: AuditConfig) -> list[dg.RunRequest]:
    paths = audit.paths()
    stale = staleness.stale_prompts(paths, load_design(audit.design, paths.assets), design_groups(audit, paths))
    return [dg.RunRequest(partition_key=g, run_key=f"refresh-prompts:{g}:{sig}", tags=TAGS) for g, sig in stale.items()]


def _stale_partitions(audit: AuditConfig) -> tuple[list[str], list[staleness.StalePartition]]:
    """(groups whose prompts are current, partitions whose generations are stale among them)."""
    paths = audit.paths()
    groups = design_groups(audit, paths)
    stale = staleness.stale_prompts(paths, load_design(audit.design, paths.assets), groups)
    fresh = [g for g in groups if g not in stale]
    return fresh, staleness.stale_generations(paths, fresh, _version_of(audit))


def _requests(job: dg.UnresolvedAssetJobDefinition, kind: str, stale: list[staleness.StalePartition]):
    return [dg.RunRequest(job_name=job.name, partition_key=model_group_key(s.model, s.group),
                          run_key=f"refresh-{kind}:{s.model}:{s.group}:{s.token}", tags={**TAGS, "qos/reason": s.reason})
            for s in stale]


def stale_audit_requests(audit: AuditConfig) -> list[dg.RunRequest]:
    """Generations + judgments of partitions whose prompts or model version changed."""
    return _requests(audit_job, "audit", _stale_partitions(audit)[1])


def stale_judge_requests(audit: AuditConfig) -> list[dg.RunRequest]:
    """Judgments only, where a configured judge has not labelled the current generations (and the
    generations themselves are current: stale ones get a whole audit run)."""
    fresh, gens = _stale_partitions(audit)
    judge_ids = [get_judge(j).judge_id for j in audit.judges]
    judged = staleness.stale_judgments(audit.paths(), judge_ids, {(s.model, s.group) for s in gens})
    return _requests(judge_job, "judge", [s for s in judged if s.group in fresh])


def _skip_if_empty(requests: list[dg.RunRequest], what: str) -> list[dg.RunRequest] | dg.SkipReason:
    return requests or dg.SkipReason(f"nothing stale: {what} are current")


@dg.schedule(name="nightly_prompts_refresh", cron_schedule=CRON["prompts"], job=prompts_job, execution_timezone="UTC")
def nightly_prompts_refresh(context: dg.ScheduleEvaluationContext, audit: AuditConfig):
    """Re-renders the prompts of every group whose templates or names changed in assets/."""
    return _skip_if_empty(stale_prompt_requests(audit), "prompts")


@dg.schedule(name="nightly_audit_refresh", cron_schedule=CRON["audit"], job=audit_job, execution_timezone="UTC")
def nightly_audit_refresh(context: dg.ScheduleEvaluationContext, audit: AuditConfig):
    """Regenerates and re-judges partitions whose prompts or model version changed."""
    return _skip_if_empty(stale_audit_requests(audit), "generations")


@dg.schedule(name="nightly_judge_refresh", cron_schedule=CRON["audit"], job=judge_job, execution_timezone="UTC")
def nightly_judge_refresh(context: dg.ScheduleEvaluationContext, audit: AuditConfig):
    """Re-judges partitions that a configured judge (e.g. a new rubric version) has not labelled yet."""
    return _skip_if_empty(stale_judge_requests(audit), "judgments")


@dg.schedule(name="nightly_metrics_refresh", cron_schedule=CRON["metrics"], job=metrics_job, execution_timezone="UTC")
def nightly_metrics_refresh(context: dg.ScheduleEvaluationContext, audit: AuditConfig):
    """Rebuilds the metric tables and views when warehouse/qos.duckdb is older than the staged data."""
    paths = audit.paths()
    if not staleness.warehouse_stale(paths):
        return dg.SkipReason("nothing stale: the metric tables are newer than every staged partition")
    return [dg.RunRequest(run_key=f"refresh-metrics:{staleness.newest_staged(paths)}", tags=TAGS)]


schedules = [nightly_prompts_refresh, nightly_audit_refresh, nightly_judge_refresh, nightly_metrics_refresh]
jobs = [judge_job]
