"""`qos ingest`: responses produced elsewhere into generations (and human labels into judgments)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import dagster as dg

from qos_pipeline.cli.common import execute, instance, print_report
from qos_pipeline.settings import project_paths
from qos_pipeline.staging import partition_file, write_partition

log = logging.getLogger("qos")


def cmd_ingest(args: argparse.Namespace) -> None:
    from qos_pipeline.ingest import recorded as ingest
    from qos_pipeline.definitions import build_definitions
    from qos_pipeline.defs.partitions import GROUPS, model_group_key

    paths = project_paths()
    path = Path(args.path).resolve()
    run_id = "ingest-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    df = ingest.load_recorded(path, paths.assets)
    parts = ingest.to_partitions(df, path, args.model, args.prompt_format, run_id, args.labels == "human")
    unknown = sorted(set(parts) - set(GROUPS))
    if unknown:
        raise SystemExit(f"{path}: groups {unknown} are not in assets/groups.yaml ({GROUPS}); add them there first")
    with instance() as inst:
        if not inst.has_dynamic_partition("model", args.model):
            inst.add_dynamic_partitions("model", [args.model])
        for group, (gen, judg) in parts.items():
            write_partition(gen, partition_file(paths.staging, "generations", group, args.model))
            key = model_group_key(args.model, group)
            events = [dg.AssetMaterialization("generations", partition=key,
                                              metadata={"rows": len(gen), "source": str(path)})]
            if judg is not None:
                write_partition(judg, partition_file(
                    paths.staging, "judgments", group, args.model, ingest.HUMAN_JUDGE))
                events.append(dg.AssetMaterialization("judgments", partition=key,
                                                      metadata={"rows": len(judg), "judge": "human"}))
            for event in events:
                inst.report_runless_asset_event(event)
            log.info("ingested %s rows of %s into generations[%s|%s]", len(gen), path.name, args.model, group)
        execute(build_definitions(), "metrics_job", inst)
    print_report(paths.db, args.model, None)
