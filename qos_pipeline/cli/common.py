"""What every command shares: the project's Dagster instance, running a job through it, the report."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

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


def execute(defs, job: str, instance, partition_key=None) -> None:
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, run_config=run_config, raise_on_error=False)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise SystemExit(f"{job} [{partition_key}] failed (run {result.run_id}): {failures[-1] if failures else ''}")


def print_report(db: Path, model: str | None, judge: str | None) -> None:
    print(format_report(build_report(db, model, judge)))
