"""An audit plan (``qos_pipeline.audit_plan``) run by a command in its own process, through the project's
instance: the partitions added, the prompts made, then each audit run in order (``qos run``, ``qos ingest``)."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from qos_pipeline.audit_plan import AuditPlan, AuditRun
from qos_pipeline.cli.common import execute
from qos_pipeline.defs.partitions import model_group_key

MODEL = "model"
"""The name of the ``model`` partitions (``defs/partitions.model_partitions``)."""


def run_plan(plan: AuditPlan, defs: dg.Definitions, instance: dg.DagsterInstance, audit_ops: dict,
             prompts_ops: dict | None = None, starting: Callable[[AuditRun], None] | None = None,
             done: Callable[[AuditRun], None] | None = None) -> None:
    """Run ``plan`` in order; ``audit_ops``, ``prompts_ops``: the runs' config; ``starting``, ``done``: said
    before and after each audit run. A failed run raises ``StepFailed`` and the rest of the plan is not run."""
    new = [key for key in plan.models if not instance.has_dynamic_partition(MODEL, key)]
    if new:
        instance.add_dynamic_partitions(MODEL, new)
    for group in plan.prompts:
        execute(defs, "prompts_job", instance, group, prompts_ops)
    for run in plan.audits:
        if starting is not None:
            starting(run)
        execute(defs, "audit_job", instance, model_group_key(run.source.key, run.group), audit_ops)
        if done is not None:
            done(run)
