"""What every command shares: the resources (from the ``QOS_*`` variables, like the UI's), the project's
Dagster instance, running a job through it, and the report."""

from __future__ import annotations

import copy
import fcntl
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef  # the public DagsterInstance.get() takes no overrides

from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs.origin import with_location_origin
from qos_pipeline.defs.resources import AuditSettings, Storage, from_env
from qos_pipeline.defs.runs import process_tags, reap
from qos_pipeline.journal import pending
from qos_pipeline.metrics.report import build_report
from qos_pipeline.metrics.text import format_report
from qos_pipeline.processes import remove_dead_scratch
from qos_pipeline.settings import PROJECT_ROOT, Paths

SCRATCH = ".ingest-check-"
"""Prefix of the scratch folders in which ``qos ingest`` checks a file (``processes.scratch_dir``)."""


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
    Use it as a context manager: Dagster then disposes of it, and of its state storage, when done.

    Its op pools (``gpu``, ``duckdb_writer`` in dagster.yaml) are not claimed by the command's in-process
    runs (pool granularity ``run``, which only the daemon's run queue enforces): a slot lives in the
    instance's database and outlives a killed process, which would freeze every later step of its pool,
    while the writer lock that serializes the command's writes is a ``flock`` the kernel releases."""
    home = dagster_home()
    ref = InstanceRef.from_dir(str(home), overrides={"concurrency": _concurrency(home)})
    if not home.is_dir():  # Dagster's own error names the missing folder
        return dg.DagsterInstance.from_ref(ref)
    # Two commands started together on a new home would both create its SQLite schema and race (Dagster
    # stamps it twice: "more than one head present"); the first creates it while the other waits here.
    with open(home / ".qos-instance.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.from_ref(ref)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _concurrency(home: Path) -> dict:
    """The instance's ``concurrency`` settings with pool granularity ``run`` (see ``instance``)."""
    try:
        config = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        config = {}
    concurrency = copy.deepcopy(config.get("concurrency") or {})
    concurrency["pools"] = {**(concurrency.get("pools") or {}), "granularity": "run"}
    concurrency["pools"].pop("op_granularity_run_buffer", None)
    return concurrency


UMASK_ENV = "QOS_UMASK"


def file_mask() -> int:
    """The umask of a ``qos`` command (and of the UI and daemon it starts): ``QOS_UMASK`` (octal, e.g. ``022``
    to let other local users read the warehouse), default ``077``: the warehouse holds every prompt and
    response, and anyone who can open its writer lock file can hold it and stall every writer."""
    value = os.environ.get(UMASK_ENV, "077").strip()
    try:
        mask = int(value, 8)
    except ValueError:
        mask = -1
    if not 0 <= mask <= 0o777:
        raise SystemExit(f"qos: {UMASK_ENV}={value!r} is not an octal umask such as 077 or 022")
    return mask


class Expected(Exception):
    """A condition that is no bug and that the user can fix (a missing file, an empty warehouse): the command
    ends with its one-line message and writes no traceback log."""


def say(line: str) -> None:
    """Print ``line`` on stderr, prefixed ``qos:``."""
    print(f"qos: {line}", file=sys.stderr, flush=True)


def repair(paths: Paths) -> None:
    """What killed commands and run workers left, repaired before a command's first run or write, each said
    in one line: runs whose process is gone are marked failed and their pool slots freed (``runs.reap``),
    scratch folders of dead ingests removed; an interrupted ingest is named with how to resume or drop it."""
    with instance() as inst:
        reap(inst, say)
    for folder in remove_dead_scratch(paths.warehouse, SCRATCH):
        say(f"removed {folder}, left by an ingest that was killed")
    for item in pending(paths.staging).values():
        say(item.describe())


def storage() -> Storage:
    """The storage resource with the ``QOS_*`` variables' values now (the same fields the UI's runs read)."""
    return from_env(Storage, deferred=False)


def settings() -> AuditSettings:
    """The audit defaults from the ``QOS_*`` environment, read now (the CLI runs outside Dagster)."""
    return from_env(AuditSettings, deferred=False)


class StepFailed(RuntimeError):
    """A Dagster run started by the command failed; the message is the failing step's own error."""


DAGSTER_LOG: list[str] = []
"""Every Dagster message of this command in full (stack traces included): the console shows first lines
only, and this goes into the error log file when the command fails (``write_error_log``)."""


class _Compact(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        DAGSTER_LOG.append(f"{time.strftime('%H:%M:%S')} {record.levelname} {text}")
        if _interruption(record):  # Ctrl-C: the command's own last line says it, once
            return
        first = text.split("\n", 1)[0]
        print(f"{time.strftime('%H:%M:%S')} dagster {record.levelname} {first}", file=sys.stderr, flush=True)


def _interruption(record: logging.LogRecord) -> bool:
    """A step or run failure that is only Dagster's report of a SIGINT / SIGTERM."""
    event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
    if event is None or not event.is_failure:
        return False
    if event.is_step_failure:
        return _interrupted(event.step_failure_data.error)
    return "was interrupted" in (event.message or "")


@dg.logger(config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO"),
                          "name": dg.Field(str, is_required=False, default_value="dagster")},
           description="One line per event on stderr; a failure's stack trace goes to the command's error log.")
def compact_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    """A Dagster logger writing one line per event on stderr (see ``_Compact``)."""
    logger = logging.Logger(init_context.logger_config["name"], init_context.logger_config["log_level"].upper())
    logger.addHandler(_Compact())
    return logger


def _cause(event: dg.DagsterEvent) -> str:
    """What a failed step says: our errors' description (``failing_clearly``), else the innermost error."""
    data = event.step_failure_data
    if data is None:
        return event.message or ""
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else (event.message or "")


def execute(defs: dg.Definitions, job: str, instance: dg.DagsterInstance, partition_key=None,
            ops: dict | None = None) -> None:
    """Run ``job`` in this process through ``instance`` (so it is listed in the UI); ``ops``: the run config
    of its assets (what the UI's launchpad holds). A failed run raises StepFailed with the failing step's
    own message (its stack trace is kept for the error log, not printed)."""
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, "ops": ops or {}}
    job_def = defs.resolve_job_def(job).with_logger_defs({"console": compact_console})
    with with_location_origin(instance, job):  # so the UI files the run under the code location (Timeline)
        result = job_def.execute_in_process(instance=instance, partition_key=partition_key, run_config=run_config,
                                            raise_on_error=False, tags=process_tags())
    release_memory()
    if not result.success:
        steps = [e for e in result.all_events if e.is_step_failure]
        for event in steps:
            error = event.step_failure_data.error
            DAGSTER_LOG.append(f"step {event.step_key} failed:\n{error.to_string() if error else '(no error info)'}")
        if any(_interrupted(e.step_failure_data.error) for e in steps):  # Ctrl-C: Dagster wraps it in a failure
            raise KeyboardInterrupt
        where = f"{job} [{partition_key}]" if partition_key is not None else job
        if not steps:
            failures = [e.message for e in result.all_events if e.is_failure]
            raise StepFailed(f"{where} failed (run {result.run_id}): {failures[-1] if failures else 'no step ran'}")
        raise StepFailed(f"{where}, step {steps[-1].step_key} failed (run {result.run_id}): {_cause(steps[-1])}")


def rebuild(log_to_stderr: bool = True) -> None:
    """Rebuild the warehouse through Dagster (``metrics_job``), so the run shows in the UI. With
    ``log_to_stderr`` its log goes to stderr, leaving stdout to what the command prints (one JSON object
    with ``--json``)."""
    stdout = sys.stdout
    if log_to_stderr:
        sys.stdout = sys.stderr
    try:
        with instance() as inst:
            execute(build_definitions(storage=storage(), audit=settings()), "metrics_job", inst)
    finally:
        sys.stdout = stdout
def _interrupted(error) -> bool:
    """Whether a step's error (or its cause) is Dagster's wrapper of a SIGINT / SIGTERM."""
    while error is not None:
        if error.cls_name == "DagsterExecutionInterruptedError":
            return True
        error = error.cause
    return False


def release_memory() -> None:
    """Hand memory freed by a finished run back to the system (glibc keeps freed heap otherwise), so a
    command running one run per partition does not carry every earlier run's high-water mark."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def error_log_dir() -> Path:
    """``<warehouse>/logs`` (the temporary folder when the warehouse cannot be resolved or written)."""
    try:
        folder = storage().paths().warehouse / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except Exception:  # a bad QOS_* variable or a read-only warehouse must not hide the original error
        folder = Path(tempfile.gettempdir()) / "qos-logs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def write_error_log(command: str, argv: list[str], exc: BaseException) -> Path:
    """The full story of a failed command: its arguments, the traceback, every Dagster message in full."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = error_log_dir() / f"qos-{command}-{stamp}-{os.getpid()}.log"
    text = [f"qos {' '.join(argv)}", f"failed at {stamp} UTC (pid {os.getpid()})", "",
            "".join(traceback.format_exception(exc))]
    if DAGSTER_LOG:
        text += ["Dagster messages of this command:", *DAGSTER_LOG]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def print_report(db: Path, model: str | None, judge: str | None) -> None:
    """Print the warehouse's plain-text report, optionally of one model and judge."""
    print(format_report(build_report(db, model, judge)))
