"""`qos ingest`: responses produced elsewhere into generations (and human labels into judgments), as
Dagster runs of the same assets and checks as generated partitions."""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from qos_pipeline import audit_plan, journal
from qos_pipeline.audit_plan import AuditRun
from qos_pipeline.cli.common import (
    SCRATCH,
    Expected,
    execute,
    instance,
    print_report,
    repair,
    say,
    settings,
    storage,
)
from qos_pipeline.cli.plans import run_plan
from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs.partitions import GROUPS
from qos_pipeline.generation.models.added import (
    RecordedSource,
    entry,
    recorded,
    register_recorded,
    restore,
)
from qos_pipeline.generation.models.source import ModelSource
from qos_pipeline.ingest.partitions import raise_if_failed, spool
from qos_pipeline.ingest.reading import IngestError
from qos_pipeline.judging.human import HUMAN_JUDGE
from qos_pipeline.processes import pause_point, scratch_dir
from qos_pipeline.staging import writer_lock

log = logging.getLogger("qos")


def cmd_ingest(args: argparse.Namespace) -> None:
    """``qos ingest``: register a file of recorded responses as a model and audit it."""
    path = Path(args.path).resolve()
    if not path.is_file():  # before anything else: a typo must not read as a problem of the model key
        raise Expected(f"file not found: {path}")
    paths, defaults = storage().paths(), settings()
    repair(paths)
    labels = args.labels == "human"
    # Read and check the whole file first, a chunk at a time: nothing is registered or run for a file that
    # would fail. The checked rows go to a scratch folder beside the warehouse (not /tmp, often in memory).
    source = RecordedSource(args.model, path, args.prompt_format, labels, args.max_response_chars)
    with scratch_dir(paths.warehouse, SCRATCH) as scratch:
        spooled = spool(source, "check", paths.assets, lambda group: scratch / f"{group}.parquet")
        raise_if_failed({group: item.outcomes() for group, item in spooled.items()}, path)
        pause_point("ingest:spooled")
    parts = {group: item.rows for group, item in spooled.items()}
    unknown = sorted(set(parts) - set(GROUPS))
    if unknown:
        raise SystemExit(f"{path}: groups {unknown} are not in assets/groups.yaml ({GROUPS}); add them there first")
    _say_empty(spooled, path)
    pause_point("ingest:checked")
    # One writer from registering the key to publishing the warehouse: a concurrent ingest, run or rebuild
    # waits (saying so) instead of publishing a build that holds part of this file.
    with writer_lock(paths.staging, f"qos ingest {path.name} --model {args.model}"):
        started = _begin(args, path, paths)
        pause_point("ingest:begun")
        outputs = ModelSource.outputs(register_recorded(args.model, path, args.prompt_format, labels, paths,
                                                        args.max_response_chars))
        try:
            _runs(outputs, parts, defaults, [HUMAN_JUDGE] if labels else defaults.judge_specs())
        except BaseException:  # a failed step or Ctrl-C (a kill never gets here: the journal then stays)
            journal.drop(paths.staging, args.model)
            restore(args.model, started.info.get("previous"), paths)
            raise
        journal.commit(paths.staging, args.model)  # every group at once: the build now loads them all
        pause_point("ingest:committed")
        with instance() as inst:
            execute(build_definitions(storage=storage(), audit=defaults), "metrics_job", inst)
    print_report(paths.db, args.model, None)


def _runs(source: ModelSource, parts: dict[str, int], defaults, judges: list[str]) -> None:
    """The plan of ``audit_plan.plan`` run here: one audit run per group of the file (no prompts: the file
    brings its own), through the project's instance."""
    def done(run: AuditRun) -> None:
        log.info("ingested %s rows of %s into generations[%s|%s]", parts[run.group], source.path.name, source.key,
                 run.group)
        pause_point("ingest:group-done")

    defs = build_definitions(storage=storage(), audit=defaults)
    with instance() as inst:
        run_plan(audit_plan.plan([source], list(parts)), defs, inst, {"judgments": {"config": {"judges": judges}}},
                 done=done)


def _begin(args: argparse.Namespace, path: Path, paths) -> journal.Pending:
    """Start (or resume) the ingest's journal: the key's current rows stay the published ones until
    ``journal.commit``. Refuses a key holding rows of another source (without --replace), or with an
    interrupted ingest of another file, before anything is written."""
    interrupted = journal.pending(paths.staging).get(args.model)
    if interrupted is not None:
        if interrupted.info.get("file") != str(path):
            raise IngestError(f"{interrupted.describe()}; resume or drop it before ingesting {path.name} under "
                              f"{args.model!r}")
        log.warning("resuming the interrupted ingest of %s into %s", path.name, args.model)
        return journal.begin(paths.staging, args.model, {})
    _held_rows(paths.staging, args.model, path, paths, args.replace)
    flags = [f"--labels {args.labels}" if args.labels else "", "--replace" if args.replace else "",
             f"--prompt-format {args.prompt_format}" if args.prompt_format != "recorded" else "",
             f"--max-response-chars {args.max_response_chars}" if args.max_response_chars != 100_000 else ""]
    resume = " ".join(["qos ingest", shlex.quote(str(path)), "--model", args.model, *filter(None, flags)])
    return journal.begin(paths.staging, args.model, {"file": str(path), "resume": resume,
                                                     "previous": entry(args.model, paths)})


def _say_empty(spooled: dict, path: Path) -> None:
    """Empty responses are stored as they are (an empty answer is an answer to judge), and said here."""
    empty, rows = sum(item.empty for item in spooled.values()), sum(item.rows for item in spooled.values())
    if empty:
        say(f"{path.name}: {empty} of {rows} responses are empty (stored as empty text; check that the file is "
            "complete)")


def _held_rows(staging: Path, model: str, path: Path, paths, replace: bool) -> list[str]:
    """The groups whose generations ``model`` holds now. Unless ``replace``, refuses a key holding rows of
    another source (generated by a model, or recorded from another file): ingesting would silently replace
    them and leave their judgments behind. Re-ingesting the same file replaces its own rows."""
    folder = staging / "generations" / f"model={model}"
    held = sorted(f.parent.name.split("=", 1)[1] for f in folder.glob("group=*/data.parquet"))
    current = recorded(model, paths)
    if not held or replace or (current is not None and current.file == path):
        return held
    what = f"outputs recorded from {current.file}" if current else "rows generated by that model"
    raise IngestError(f"model key {model!r} already holds {what} (groups {', '.join(held)}); ingesting {path.name} "
                      f"under it would replace them. Give another --model key, or add --replace to replace them "
                      "(their judgments are deleted too)")
