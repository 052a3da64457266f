"""Declarative automation: what becomes stale is re-materialized, in dependency order, by Dagster.

A change to an observed source (``defs/sources.py``: a template or name edited, a checkpoint replaced in
place, a judge redefined) or to an asset's code version makes the partitions that depend on it run again:
prompts -> generations -> judgments -> metric tables, each once its inputs are done. Partitions that were
never materialized are left to the command line and the checkpoint sensor (automation refreshes what
exists; it does not start an audit of its own). Everything is off until the ``audit_automation`` sensor is
turned on (UI -> Automation, or ``dagster sensor start audit_automation``).

This replaces the hand-written staleness rules and nightly schedules of earlier versions; what stays
hand-written is the checkpoint sensor (``defs/sensors.py``), because adding dynamic partitions is not
something an automation condition can do.
"""

from __future__ import annotations

import warnings

import dagster as dg

AC = dg.AutomationCondition

_INPUTS_READY = ~AC.any_deps_match(AC.missing()) & ~AC.any_deps_in_progress() & ~AC.in_progress()

REFRESH = ((AC.any_deps_updated() | AC.code_version_changed()).since_last_handled() & ~AC.missing()  # type: ignore[misc]  # dagster types its self as a condition over asset and check keys
           & _INPUTS_READY).with_label("refresh when an input or the code changed")
"""For the partitioned assets: an existing partition runs again once an input changed and every input is
materialized and idle (no upstream run in flight), never twice for the same change."""

REBUILD = ((AC.any_deps_updated() | AC.code_version_changed()).since_last_handled()  # type: ignore[misc]  # dagster types its self as a condition over asset and check keys
           & ~AC.any_deps_in_progress() & ~AC.in_progress()).with_label("rebuild after new results")
"""For the warehouse: one rebuild after judgments (or judge validations) changed, once none is in flight;
its inputs are partitioned, so some partitions are always missing and that does not hold it back."""

# The observable sources are in its target too: Dagster adds a `default_automation_condition_sensor` for any
# asset with an automation condition that no sensor targets (AssetSelection.all() leaves sources out), and
# the sources' observations would then run only when that undocumented third sensor is turned on.
with warnings.catch_warnings():  # `include_sources` is a beta parameter, but the documented way to do this
    warnings.simplefilter("ignore", dg.BetaWarning)
    EVERY_ASSET = dg.AssetSelection.all(include_sources=True)

automation_sensor = dg.AutomationConditionSensorDefinition(
    "audit_automation", target=EVERY_ASSET, default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=30,
    description="Observes the sources every 15 minutes, refreshes stale partitions and rebuilds the warehouse "
                "after new results (see defs/automation.py).")
