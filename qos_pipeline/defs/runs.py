"""Runs whose process is gone: found, marked failed and their pool slots freed, so that a killed command
(kill -9, a closed terminal's SIGHUP, the OOM killer) never freezes the commands and runs after it.

Every run records the process executing it: Dagster writes an engine event with the pid when a run worker
starts ("Started process for run (pid: N)") or a run executes in a process ("Executing steps in process");
runs started by the ``qos`` command also carry the tags ``qos/pid`` and ``qos/host``. A run still
STARTING, STARTED or CANCELING whose process is gone never ends by itself: it stays "Started" in the UI,
counts against ``max_concurrent_runs``, and keeps any op-pool slot it claimed (``gpu``, ``duckdb_writer``),
so every later step of that pool waits for ever. ``reap`` marks such runs failed (saying why) and frees
their slots. ``qos doctor``, every ``qos`` command that writes (before its first run) and the daemon's
``dead_runs_sensor`` call it. A pid counts as gone when no process has it, or when the process holding it
started after the run recorded it (the pid was reused).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from qos_pipeline.processes import process_gone

PID_TAG, HOST_TAG = "qos/pid", "qos/host"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    """The tags a run started by this process carries: who executes it, on which machine."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


@dataclass(frozen=True)
class DeadRun:
    """A run left STARTED by a process that no longer exists."""

    run_id: str
    job: str
    partition: str | None
    pid: int

    def describe(self) -> str:
        """One line for the user: which run, and which process left it."""
        where = f"{self.job}[{self.partition}]" if self.partition else self.job
        return (f"run {self.run_id[:8]} ({where}) was left unfinished by pid {self.pid}, which is gone (killed, or "
                "its terminal closed)")


def _local_storage(instance: dg.DagsterInstance) -> bool:
    """Whether the instance's runs can only come from this machine: SQLite storage lives on one disk (a
    shared PostgreSQL instance may hold runs of other hosts, whose pids mean nothing here)."""
    return "sqlite" in type(instance.run_storage).__name__.lower()


def _recorded_process(instance: dg.DagsterInstance, record) -> tuple[int, float] | None:
    """(pid, when it was recorded) of the process executing the run, or None when unknown here."""
    run = record.dagster_run
    if PID_TAG in run.tags:
        if run.tags.get(HOST_TAG) != socket.gethostname():
            return None
        return int(run.tags[PID_TAG]), record.create_timestamp.timestamp()
    if not _local_storage(instance):
        return None
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = (data.metadata or {}).get("pid") if data is not None else None
        if pid is not None and str(pid.value).isdigit():
            return int(str(pid.value)), entry.timestamp
    return None


def dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """The unfinished runs of ``instance`` whose recorded process is gone."""
    found = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        process = _recorded_process(instance, record)
        if process is not None and process_gone(*process):
            run = record.dagster_run
            found.append(DeadRun(run.run_id, run.job_name, run.tags.get("dagster/partition"), process[0]))
    return found


def reap(instance: dg.DagsterInstance, say: Callable[[str], None]) -> list[DeadRun]:
    """Mark every dead run failed and free its pool slots (and pending claims), saying one line each."""
    dead = dead_runs(instance)
    for item in dead:
        run = instance.get_run_by_id(item.run_id)
        if run is None or run.status not in IN_PROGRESS:  # finished meanwhile
            continue
        instance.report_run_failed(run, f"{item.describe()}; marked failed by qos")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(item.run_id)
        say(f"{item.describe()}: marked failed, its pool slots freed")
    return dead


@dg.sensor(name="dead_runs_sensor", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=60)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Every minute: runs left unfinished by a process that is gone (a killed run worker or `qos` command)
    are marked failed and their pool slots freed, so the steps waiting for those slots go on. Requests no run."""
    dead = reap(context.instance, context.log.warning)
    return dg.SkipReason(f"marked {len(dead)} dead run(s) failed" if dead else "no dead run")
