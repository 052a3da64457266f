"""The checkpoint sensor: a complete checkpoint dropped into a watched folder becomes a ``model`` partition,
with its prompts and one audit run per group, as ``qos_pipeline.audit_plan`` plans them (the plan ``qos run``
runs in its process, requested here as runs). Once those runs succeed, declarative automation rebuilds
the metric tables (``defs/automation.py``), so its results land in the warehouse by themselves.

Off by default: turn it on in the UI (Automation) or with ``dagster sensor start checkpoint_sensor``, with
``audit_automation`` for the warehouse rebuild. Checkpoint rules live in ``generation/models/checkpoints``.
It stays hand-written because it adds dynamic partitions, which no automation condition can.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from qos_pipeline import audit_plan
from qos_pipeline.defs.jobs import audit_job, prompts_job
from qos_pipeline.defs.partitions import GROUPS, model_group_key, model_partitions
from qos_pipeline.defs.resources import AuditSettings, CheckpointWatch, Storage
from qos_pipeline.generation.models import checkpoints
from qos_pipeline.generation.models.added import added_models
from qos_pipeline.generation.models.files import ModelError, digest_store
from qos_pipeline.generation.models.source import ModelSource
from qos_pipeline.prompts.design import load_design
from qos_pipeline.settings import Paths
from qos_pipeline.staging import WarehouseBusy, partition_file, writer_lock

_MODEL = str(model_partitions.name)  # the dynamic partitions of model keys

TRIGGER_TAG = "qos/trigger"


def _load(cursor: str | None) -> dict:
    state = json.loads(cursor) if cursor else {}
    return {"seen": state.get("seen", {}), "requested": state.get("requested", {}),
            "rejected": state.get("rejected", {}), "prompts": state.get("prompts", {})}


def design_groups(design: str, paths: Paths) -> list[str]:
    """The groups an audit covers: the design's groups that are partitions (as ``qos run`` does)."""
    return [g for g in load_design(design, paths.assets).groups if g in GROUPS]


def _register(source: ModelSource, root: Path | None, paths: Paths) -> str | None:
    """Remember key -> folder for the generator, and the checkpoint's lineage (its watched folder is its
    family, its step or arrival its order); the reason it cannot be registered, or None."""
    try:
        # models.added.yaml is read, changed and rewritten: one writer at a time, and a tick never waits
        with writer_lock(paths.staging, "checkpoint_sensor", wait=False):
            audit_plan.enroll(source, paths, str(root or source.path.parent))
    except ModelError as exc:  # key taken by another folder or by assets/models.yaml
        return str(exc)
    return None


def _audit_requests(plan: audit_plan.AuditPlan) -> list[dg.RunRequest]:
    """The plan's audit runs as requests, with its run keys (key, content version, group: a later tick never
    repeats one, and a replaced checkpoint gets new runs) and tags."""
    return [dg.RunRequest(job_name=audit_job.name, partition_key=model_group_key(run.source.key, run.group),
                          run_key=run.run_key, tags={TRIGGER_TAG: "checkpoint_sensor", **run.tags()})
            for run in plan.audits]


def _log_changes(context: dg.SensorEvaluationContext, state: dict, scan: checkpoints.ScanResult) -> None:
    # Rejections are logged once (the cursor remembers them); waiting folders on every tick, as info.
    for where, why in scan.rejected.items():
        if state["rejected"].get(where) != why:
            context.log.warning(f"checkpoint {where} rejected: {why}")
    for where, why in scan.waiting.items():
        context.log.info(f"checkpoint {where} not ready: {why}")
    state["rejected"] = scan.rejected


def evaluate_checkpoints(context: dg.SensorEvaluationContext, watch: CheckpointWatch, storage: Storage,
                         audit: AuditSettings) -> dg.SensorResult:
    """The checkpoint sensor's body: scan, register, add partitions, request prompts and audit runs."""
    state, roots = _load(context.cursor), watch.roots()
    if not roots:
        return dg.SensorResult(skip_reason="no folder to watch: set QOS_CHECKPOINT_DIRS (or the checkpoint_watch "
                                           "resource's dirs)")
    paths = storage.paths()
    scan = checkpoints.scan(roots, state["seen"], watch.marker, claimed=added_models(paths),
                            store=digest_store(paths.model_cache))
    groups = design_groups(audit.design, paths)
    has_prompts = {g for g in groups if partition_file(paths.staging, "prompts", g).is_file()}
    runs, new_keys, need_prompts = [], [], set()
    for ready in scan.ready:
        version_key = f"{ready.key}@{ready.version}"
        todo = [g for g in groups if g not in state["requested"].get(version_key, [])]
        if not todo:
            continue
        source = ModelSource.checkpoint(ready.key, ready.path, ready.version)  # checked and hashed by the scan
        try:
            problem = _register(source, ready.root, paths)
        except WarehouseBusy as exc:  # a writer holds the warehouse: the next tick tries again
            scan.waiting[str(ready.path)] = str(exc)
            continue
        if problem:
            scan.rejected[str(ready.path)] = problem
            continue
        plan = audit_plan.plan([source], todo, staged=has_prompts)  # audits wait for their prompts' runs
        new_keys += [k for k in plan.models if not context.instance.has_dynamic_partition(_MODEL, k)]
        runs += _audit_requests(plan)
        need_prompts |= set(plan.prompts)
        state["requested"][version_key] = sorted(set(groups) - set(plan.prompts))
    # Prompts first: their audit runs follow on a later tick, once the prompts are staged.
    asked = set(state["prompts"].get(audit.design, []))
    runs += [dg.RunRequest(job_name=prompts_job.name, partition_key=g, run_key=f"prompts:{audit.design}:{g}",
                           tags={TRIGGER_TAG: "checkpoint_sensor"}) for g in sorted(need_prompts - asked)]
    state["prompts"][audit.design] = sorted(asked | need_prompts)
    state["seen"] = scan.seen
    _log_changes(context, state, scan)
    return dg.SensorResult(
        run_requests=runs, cursor=json.dumps(state, sort_keys=True),
        dynamic_partitions_requests=[model_partitions.build_add_request(new_keys)] if new_keys else [],
        skip_reason=None if runs else f"no new complete checkpoint ({len(scan.waiting)} waiting, "
                                      f"{len(scan.rejected)} rejected)")


@dg.sensor(name="checkpoint_sensor", jobs=[prompts_job, audit_job], default_status=dg.DefaultSensorStatus.STOPPED,
           minimum_interval_seconds=30)
def checkpoint_sensor(context: dg.SensorEvaluationContext, checkpoint_watch: CheckpointWatch, storage: Storage,
                      audit: AuditSettings) -> dg.SensorResult:
    """Watches the folders in QOS_CHECKPOINT_DIRS for complete Hugging Face checkpoints (config, tokenizer,
    every indexed shard, unchanged since the previous tick or marked with QOS_CHECKPOINT_MARKER, default
    `.complete`), adds each as a `model` partition (its folder name made safe) and requests the prompts and
    the audit runs of every group once per checkpoint version."""
    return evaluate_checkpoints(context, checkpoint_watch, storage, audit)
