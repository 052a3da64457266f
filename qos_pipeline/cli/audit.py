"""`qos run`: the whole audit (prompts, generations and judgments per model x group, metric tables)
through the project's Dagster instance."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from qos_pipeline.cli.common import execute, instance, print_report
from qos_pipeline.generation.formats import FORMATS_ENV, parse_ids
from qos_pipeline.settings import project_paths

log = logging.getLogger("qos")


def cmd_run(args: argparse.Namespace) -> None:
    from qos_pipeline.definitions import build_definitions
    from qos_pipeline.defs.partitions import GROUPS, REFERENCE_GROUP, model_group_key
    from qos_pipeline.defs.resources import AuditConfig, GeneratorResource
    from qos_pipeline.prompts.design import load_design
    from qos_pipeline.generation.models.registry import load_registry
    from qos_pipeline.generation.formats import select_formats
    from qos_pipeline.generation.models.added import register

    paths = project_paths()
    design_arg = str(Path(args.design).resolve()) if Path(args.design).is_dir() else args.design
    design = load_design(design_arg, paths.assets)
    groups = [g for g in design.groups if g in GROUPS and (not args.groups or g in args.groups)]
    if not groups:
        raise SystemExit(f"no groups to run: design {design.name} has {design.groups}, requested {args.groups}")
    models = args.model or [load_registry(paths.assets)["default"]]
    keys = [register(str(Path(m).resolve()) if Path(m).is_dir() else m, paths).key for m in models]
    formats = args.prompt_format or parse_ids(os.environ.get(FORMATS_ENV))
    if formats:
        select_formats(paths.assets, formats)  # an unknown id fails here, before any run starts
    audit = AuditConfig(design=design_arg, samples=args.samples, seed=args.seed, batch_size=args.batch_size,
                        max_new_tokens=args.max_new_tokens, judges=args.judge,
                        reference_group=args.reference_group or REFERENCE_GROUP,
                        prompt_formats=formats, do_sample=_do_sample(args),
                        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    generator = GeneratorResource(compile=True) if args.compile else None
    defs = build_definitions(generator=generator, audit=audit)
    with instance() as inst:
        inst.add_dynamic_partitions("model", [k for k in keys if not inst.has_dynamic_partition("model", k)])
        start = time.perf_counter()
        for group in groups:
            execute(defs, "prompts_job", inst, group)
        for key in keys:
            for group in groups:
                log.info("audit %s | %s", key, group)
                execute(defs, "audit_job", inst, model_group_key(key, group))
        execute(defs, "metrics_job", inst)
    log.info("audit finished in %.0f s: %s", time.perf_counter() - start, paths.db)
    print_report(paths.db, None, None)


def _do_sample(args: argparse.Namespace) -> bool | None:
    """--greedy: off; a sampling setting given: on (it would be ignored otherwise); else the model's default."""
    if args.greedy:
        return False
    return True if any(v is not None for v in (args.temperature, args.top_p, args.top_k)) else None
