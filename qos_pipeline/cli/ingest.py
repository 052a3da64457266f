"""`qos ingest`: responses produced elsewhere into generations (and human labels into judgments), as
Dagster runs of the same assets and checks as generated partitions."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from qos_pipeline.cli.common import execute, instance, print_report, settings, storage
from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs.partitions import GROUPS, model_group_key
from qos_pipeline.generation.models.added import register_recorded
from qos_pipeline.ingest.recorded import load_recorded, raise_if_failed, to_partitions
from qos_pipeline.judging.human import HUMAN_JUDGE
from qos_pipeline.staging import writer_lock

log = logging.getLogger("qos")


def cmd_ingest(args: argparse.Namespace) -> None:
    paths, defaults = storage().paths(), settings()
    path = Path(args.path).resolve()
    labels = args.labels == "human"
    # Read and check the whole file first: nothing is registered or run for a file that would fail.
    parts = to_partitions(load_recorded(path, paths.assets), path, args.model, args.prompt_format, "check", labels)
    raise_if_failed(parts, path)
    unknown = sorted(set(parts) - set(GROUPS))
    if unknown:
        raise SystemExit(f"{path}: groups {unknown} are not in assets/groups.yaml ({GROUPS}); add them there first")
    # One writer from registering the key to publishing the warehouse: a concurrent ingest, run or rebuild
    # waits (saying so) instead of publishing a build that holds part of this file.
    with writer_lock(paths.staging, f"qos ingest {path.name} --model {args.model}"):
        register_recorded(args.model, path, args.prompt_format, labels, paths)
        defs = build_definitions(storage=storage(), audit=defaults)
        judges = [HUMAN_JUDGE] if labels else defaults.judge_specs()
        with instance() as inst:
            if not inst.has_dynamic_partition("model", args.model):
                inst.add_dynamic_partitions("model", [args.model])
            for group, (rows, _) in parts.items():
                execute(defs, "audit_job", inst, model_group_key(args.model, group),
                        {"judgments": {"config": {"judges": judges}}})
                log.info("ingested %s rows of %s into generations[%s|%s]", len(rows), path.name, args.model, group)
            execute(defs, "metrics_job", inst)
    print_report(paths.db, args.model, None)
