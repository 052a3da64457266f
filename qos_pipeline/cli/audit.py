"""`qos run`: the whole audit (prompts, generations and judgments per model x group, metric tables)
through the project's Dagster instance, with the command's flags as the runs' config."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from qos_pipeline import audit_plan
from qos_pipeline.cli.common import (
    execute,
    instance,
    print_report,
    repair,
    settings,
    storage,
)
from qos_pipeline.cli.plans import run_plan
from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs.partitions import GROUPS
from qos_pipeline.defs.resources import GeneratorResource, from_env
from qos_pipeline.generation.formats import select_formats
from qos_pipeline.generation.models.registry import load_registry
from qos_pipeline.generation.models.source import ModelSource, resolve_source
from qos_pipeline.prompts.design import audit_groups, load_design
from qos_pipeline.staging import writer_lock

log = logging.getLogger("qos")


def cmd_run(args: argparse.Namespace) -> None:
    """``qos run``: materialize the audit of a model through Dagster (prompts, generations, judgments, metrics)."""
    paths, defaults = storage().paths(), settings()
    design_arg = args.design or defaults.design
    design_arg = str(Path(design_arg).resolve()) if Path(design_arg).is_dir() else design_arg
    design = load_design(design_arg, paths.assets)
    groups, notes = audit_groups(design, args.groups, GROUPS)  # an unknown or empty group fails before any work
    for note in notes:
        log.warning(note)
    models = args.model or [load_registry(paths.assets)["default"]]
    formats = args.prompt_format or defaults.format_ids()
    if formats:
        select_formats(paths.assets, formats)  # an unknown id fails here, before any run starts
    repair(paths)
    # One writer from registering the models to publishing the warehouse (see staging.writer_lock): another
    # run, ingest or rebuild of this warehouse waits, saying so, and readers are never held up.
    with writer_lock(paths.staging, "qos run " + " ".join(models)):
        sources = [_enroll(model, args.family, paths) for model in models]
        _audit(args, design_arg, groups, sources, formats, defaults)
    print_report(paths.db, None, None)


def _enroll(model: str, family: str | None, paths) -> ModelSource:
    """Resolve ``model`` (a key or a folder) once, register it, and put a checkpoint in its family
    (``audit_plan.family_of``) with its order (the step its name or trainer_state.json states, else when it
    appeared)."""
    source = resolve_source(str(Path(model).resolve()) if Path(model).is_dir() else model, paths)
    found = audit_plan.enroll(source, paths, audit_plan.family_of(Path(model).expanduser(), family))
    if found is not None:
        order = f"step {found.step}" if found.step is not None else f"appeared {found.appeared_at}"
        log.info("checkpoint %s: family %s, %s (qos trend shows the family)", source.key, found.family, order)
    return source


def _audit(args: argparse.Namespace, design_arg: str, groups: list[str], sources: list[ModelSource], formats,
           defaults) -> None:
    """The plan of ``audit_plan.plan`` run here: prompts of every group, one audit per model x group, then the
    metric tables."""
    paths = storage().paths()
    defs = build_definitions(generator=from_env(GeneratorResource, deferred=False), storage=storage(), audit=defaults)
    with instance() as inst:
        start = time.perf_counter()
        run_plan(audit_plan.plan(sources, groups), defs, inst, audit_config(args, formats, defaults),
                 {"prompts": {"config": {"design": design_arg, "keep_partition_settings": False}}},
                 starting=lambda run: log.info("audit %s | %s", run.source.key, run.group))
        metrics_config = {"metric_tables": {"config": {"reference_group": args.reference_group}}}
        execute(defs, "metrics_job", inst, None, metrics_config)
    log.info("audit finished in %.0f s: %s", time.perf_counter() - start, paths.db)


def audit_config(args: argparse.Namespace, formats: list[str] | None, defaults) -> dict:
    """The run config of one audit run: the flags, the settings where a flag is not given; sampling left
    empty means the model's own (never the partition's earlier settings: the command's flags decide)."""
    generations = {"samples": args.samples, "seed": args.seed, "batch_size": args.batch_size,
                   "max_new_tokens": args.max_new_tokens, "prompt_formats": formats,
                   "do_sample": False if args.greedy else None,
                   "temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
                   "compile": args.compile, "decoder": args.decoder, "keep_partition_settings": False}
    return {"generations": {"config": {k: v for k, v in generations.items() if v is not None}},
            "judgments": {"config": {"judges": args.judge or defaults.judge_specs()}}}
