"""Jobs: the three stages as runnable units (also what `qos run` executes through the instance)."""

import dagster as dg

from qos_pipeline.defs.partitions import group_partitions, model_group_partitions

prompts_job = dg.define_asset_job(
    "prompts_job", selection=dg.AssetSelection.assets("prompts"), partitions_def=group_partitions,
    description="Render the design's prompts of one name group.")

audit_job = dg.define_asset_job(
    "audit_job", selection=dg.AssetSelection.assets("generations", "judgments"),
    partitions_def=model_group_partitions,
    description="Generate and judge one model x group partition.")

metrics_job = dg.define_asset_job(
    "metrics_job", selection=dg.AssetSelection.assets("metric_tables"),
    description="Rebuild warehouse/qos.duckdb from every staged partition and run its suites.")

judge_job = dg.define_asset_job(
    "judge_job", selection=dg.AssetSelection.assets("judgments"), partitions_def=model_group_partitions,
    description="Judge the staged generations of one model x group again (other judges, a changed rubric).")
