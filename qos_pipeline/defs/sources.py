"""Observable sources: what the audit reads from outside Dagster, with a data version each, so that a
change marks what depends on it stale and declarative automation (``defs/automation.py``) refreshes it.

- ``prompt_designs`` [group]: the names and templates of the design a group's prompts are rendered from;
- ``model_sources`` [model]: the content version of a model's checkpoint, or of a recorded file;
- ``judge_definitions``: the configured judges' ids (they hash rules source, rubric, model, training data).

They are observed on a cron tick by the automation sensor, or from the UI (Observe). The first observation
of a source counts as a change: enabling automation refreshes each partition once (cheap: generations come
from the row cache, unchanged judgments are reused).
"""

from __future__ import annotations

import warnings

import dagster as dg

from qos_pipeline.defs.partitions import GROUPS, group_partitions, model_partitions
from qos_pipeline.defs.resources import AuditSettings, Storage
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.source import resolve_source
from qos_pipeline.judging.specs import judges_version
from qos_pipeline.prompts.design import DesignError, design_version, load_design
from qos_pipeline.staging import partition_file, stored

OBSERVE_CRON = "*/15 * * * *"
OBSERVED = dg.AutomationCondition.cron_tick_passed(OBSERVE_CRON).since_last_handled()  # type: ignore[misc]  # dagster types its self as a condition over asset and check keys
"""Sources are observed every 15 minutes while automation is on (hashing weights is not free)."""


def _keys(context: dg.AssetExecutionContext, every: list[str]) -> list[str]:
    return [context.partition_key] if context.has_partition_key else every


def _observable(**kwargs):
    """``dg.observable_source_asset`` (a beta API, but the documented way to version an external source)."""
    def decorate(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            return dg.observable_source_asset(group_name="sources", automation_condition=OBSERVED, **kwargs)(fn)
    return decorate


@_observable(partitions_def=group_partitions)
def prompt_designs(context: dg.AssetExecutionContext, storage: Storage, audit: AuditSettings
                   ) -> dg.DataVersionsByPartition:
    """The design each group's prompts are rendered from: the group's names and every template of the
    design its staged prompts use (else the settings' design). Data version: a hash of their content."""
    paths, versions = storage.paths(), {}
    for group in _keys(context, GROUPS):
        design = stored(partition_file(paths.staging, "prompts", group)).get("design") or audit.design
        try:
            versions[group] = design_version(load_design(design, paths.assets), group)
        except DesignError as exc:  # a broken file is reported; the prompts keep their last good state
            context.log.warning(f"prompt_designs[{group}]: cannot read design {design!r}: {exc}")
    return dg.DataVersionsByPartition(versions)


@_observable(partitions_def=model_partitions)
def model_sources(context: dg.AssetExecutionContext, storage: Storage) -> dg.DataVersionsByPartition:
    """Each model partition's source: the content hash of its checkpoint (config and weights), or of the
    file its recorded outputs came from. A checkpoint overwritten in place gets a new version."""
    paths, versions = storage.paths(), {}
    for key in _keys(context, context.instance.get_dynamic_partitions(model_partitions.name)):
        try:
            versions[key] = resolve_source(key, paths, convert=False).version
        except (ModelError, OSError) as exc:  # gone or not in the local cache: nothing to regenerate from
            context.log.warning(f"model_sources[{key}]: cannot observe ({exc})")
    return dg.DataVersionsByPartition(versions)


@_observable()
def judge_definitions(storage: Storage, audit: AuditSettings) -> dg.DataVersion:
    """The configured judges (``AuditSettings.judges``). Data version: a hash of their ids, which change
    whenever a judge's behaviour can (an edited rule or rubric, another judge model, a retrained judge)."""
    return dg.DataVersion(judges_version(audit.judge_specs(), storage.paths()))
