"""What every command shares: the resources (from the ``QOS_*`` variables, like the UI's), the project's
Dagster instance, running a job through it, and the report."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from qos_pipeline.defs.resources import AuditSettings, Storage, from_env
from qos_pipeline.metrics.report import build_report, format_report
from qos_pipeline.settings import PROJECT_ROOT


def dagster_home() -> Path:
    """``$DAGSTER_HOME`` if set, else the project's ``.dagster/`` holding a link to ``dagster.yaml``.

    Sets ``DAGSTER_HOME`` so every Dagster call in this process (and its children) uses it.
    """
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = PROJECT_ROOT / ".dagster"
    home.mkdir(exist_ok=True)
    link = home / "dagster.yaml"
    if not link.exists():
        link.symlink_to(Path("..") / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def instance() -> dg.DagsterInstance:
    """The project's Dagster instance (``.dagster/`` unless DAGSTER_HOME is set), so runs show in the UI.
    Use it as a context manager: Dagster then disposes of it, and of its state storage, when done."""
    dagster_home()
    return dg.DagsterInstance.get()


def storage() -> Storage:
    """The storage resource with the ``QOS_*`` variables' values now (the same fields the UI's runs read)."""
    return from_env(Storage, deferred=False)


def settings() -> AuditSettings:
    return from_env(AuditSettings, deferred=False)


def execute(defs: dg.Definitions, job: str, instance: dg.DagsterInstance, partition_key=None,
            ops: dict | None = None) -> None:
    """Run ``job`` in this process through ``instance`` (so it is listed in the UI); ``ops``: the run config
    of its assets (what the UI's launchpad holds). Exits naming the failure when the run fails."""
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, "ops": ops or {}}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, run_config=run_config, raise_on_error=False)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise SystemExit(f"{job} [{partition_key}] failed (run {result.run_id}): {failures[-1] if failures else ''}")


def print_report(db: Path, model: str | None, judge: str | None) -> None:
    print(format_report(build_report(db, model, judge)))
