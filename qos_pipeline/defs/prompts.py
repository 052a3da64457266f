"""The ``prompts`` asset: one partition per name group."""

from typing import Iterator

import dagster as dg

from qos_pipeline.defs.checks import checked, failing_clearly, specs
from qos_pipeline.defs.partitions import group_partitions
from qos_pipeline.defs.resources import AuditConfig
from qos_pipeline.prompts.design import load_design
from qos_pipeline.prompts.step import build_prompts
from qos_pipeline.staging import partition_file, write_partition

PROMPT_CHECKS = ["prompts_schema", "prompts_complete"]


@dg.asset(partitions_def=group_partitions, group_name="audit", kinds={"python", "parquet"},
          check_specs=specs("prompts", PROMPT_CHECKS))
@failing_clearly
def prompts(context: dg.AssetExecutionContext, audit: AuditConfig) -> Iterator:
    """Non-toxic fill-in-the-blank prompts of one name group: every template of the configured design
    filled with every name of the group. Grain: one row per (template, name); key ``prompt_id``."""
    group, paths = context.partition_key, audit.paths()
    design = load_design(audit.design, paths.assets)
    df, outcomes = build_prompts(design, group, context.run_id)
    yield from checked(f"prompts[{group}]", outcomes)
    path = write_partition(df, partition_file(paths.staging, "prompts", group))
    yield dg.MaterializeResult(
        metadata={"rows": len(df), "design": design.name, "path": str(path), "dagster/row_count": len(df)})
