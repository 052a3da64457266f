"""The ``metric_tables`` asset: the whole DuckDB warehouse, rebuilt by the single ``duckdb_writer`` step."""

from typing import Iterator

import dagster as dg

from qos_pipeline.checks import BlockedError
from qos_pipeline.defs.checks import checked, failing_clearly, specs
from qos_pipeline.defs.automation import REBUILD
from qos_pipeline.defs.config import MetricTablesConfig
from qos_pipeline.defs.resources import AuditSettings, Storage
from qos_pipeline.metrics.html import markdown_summary
from qos_pipeline.metrics.plots import write_plots
from qos_pipeline.metrics.step import code_version, rebuild_warehouse

METRIC_CHECKS = ["metric_tables_rates_in_range", "metric_tables_rates_sum_to_one", "metric_tables_labels_in_taxonomy",
                 "metric_tables_groups_present", "metric_tables_partitions_judged", "metric_tables_comparisons_valid",
                 "metric_tables_no_orphan_judgments", "metric_tables_one_config_per_model",
                 "metric_tables_reference_group_present",
                 "metric_tables_judge_tables_valid", "metric_tables_design_complete"]


@dg.asset(group_name="warehouse", kinds={"duckdb"}, pool="duckdb_writer", deps=["judgments", "judge_validations"],
          automation_condition=REBUILD, code_version=code_version(), check_specs=specs("metric_tables", METRIC_CHECKS))
@failing_clearly
def metric_tables(context: dg.AssetExecutionContext, config: MetricTablesConfig, storage: Storage,
                  audit: AuditSettings) -> Iterator:
    """All tables of ``warehouse/qos.duckdb``, rebuilt from every staged partition and published only
    when the Great Expectations suites pass: label_rates_{model,group,name,popularity,gender,template}
    (share of each label per model x prompt format x judge x cell, with Wilson 95% CIs) and
    disparities (refusal rates per group vs the reference group). Its metadata carries the findings, the
    gaps vs the reference group and the pictures (also written as PNGs into the warehouse's ``plots/``)."""
    paths = storage.paths()
    reference = config.reference_group or audit.reference(paths)
    try:
        counts, outcomes = rebuild_warehouse(paths.staging, paths.db, reference, config.stats(audit),
                                             notify=context.log.warning)
    except BlockedError as exc:  # not published: the suites' results still reach the UI before the step fails
        counts, outcomes = {}, exc.outcomes
    yield from checked(f"warehouse {paths.db}", outcomes)
    metadata = {}
    if counts.get("label_rates_model"):  # published and not empty: the findings and pictures of this build
        written = write_plots(paths.db)  # first in the UI's metadata table: what the build found
        metadata["findings"] = dg.MetadataValue.md(
            markdown_summary(paths.db, {name: path.read_bytes() for name, path in written.items()}))
        metadata["plots"] = dg.MetadataValue.path(str(paths.db.parent / "plots"))
    metadata.update({f"rows/{t}": n for t, n in counts.items()}, path=str(paths.db))
    yield dg.MaterializeResult(metadata=metadata)
