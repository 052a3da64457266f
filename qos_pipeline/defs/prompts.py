"""The ``prompts`` asset: one partition per name group."""

from collections.abc import Iterator

import dagster as dg

from qos_pipeline.defs.automation import REFRESH
from qos_pipeline.defs.checks import column_schema, failing_clearly, materialized, specs, stop_if_blocked
from qos_pipeline.defs.config import PromptsConfig
from qos_pipeline.defs.partitions import group_partitions
from qos_pipeline.defs.resources import AuditSettings, Storage
from qos_pipeline.defs.sources import prompt_designs
from qos_pipeline.prompts import checks, step
from qos_pipeline.prompts import design as design_module
from qos_pipeline.prompts.design import load_design
from qos_pipeline.prompts.step import build_prompts
from qos_pipeline.provenance import code_digest
from qos_pipeline.staging import partition_file, stored, write_partition, writer_lock


@dg.asset(partitions_def=group_partitions, group_name="audit", kinds={"python", "parquet"},
          deps=[prompt_designs], automation_condition=REFRESH,
          code_version=code_digest(design_module, step, checks),
          check_specs=specs("prompts", group_partitions), metadata=column_schema("prompts"))
@failing_clearly
def prompts(context: dg.AssetExecutionContext, config: PromptsConfig, storage: Storage,
            audit: AuditSettings) -> Iterator:
    """Non-toxic fill-in-the-blank prompts of one name group: every template of the design filled with
    every name of the group. Grain: one row per (template, name); key ``prompt_id`` (a hash of the text).

    Only generated models read these. Outputs recorded elsewhere (``qos ingest``) carry their own prompts
    in ``generations``, so after ingesting alone this asset reads 0% filled with its checks not run, and
    nothing is missing; ``qos run`` (or Materialize here) renders the design's prompts."""
    group, paths = context.partition_key, storage.paths()
    target = partition_file(paths.staging, "prompts", group)
    settings = config.effective(stored(target), audit)
    design = load_design(settings["design"], paths.assets)
    df, outcomes = build_prompts(design, group, context.run_id)
    yield from stop_if_blocked(context, f"prompts[{group}]", outcomes)
    with writer_lock(paths.staging, f"prompts[{group}]", notify=context.log.warning):
        path = write_partition(df, target, settings)
    yield materialized(outcomes, {"rows": len(df), "design": design.name, "path": str(path),
                                  "dagster/row_count": len(df)})
