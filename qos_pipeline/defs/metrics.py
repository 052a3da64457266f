"""The ``metric_tables`` asset: the whole DuckDB warehouse, rebuilt by the single ``duckdb_writer`` step."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from qos_pipeline.checks import BlockedError
from qos_pipeline.defs.alerts import gate_result
from qos_pipeline.defs.automation import REBUILD
from qos_pipeline.defs.checks import failing_clearly, materialized, specs, stop_if_blocked
from qos_pipeline.defs.config import MetricTablesConfig
from qos_pipeline.defs.resources import AuditSettings, RegressionGate, Storage
from qos_pipeline.generation.models import lineage
from qos_pipeline.metrics.html import markdown_summary
from qos_pipeline.metrics.plots import write_plots
from qos_pipeline.metrics.step import code_version, rebuild_warehouse
from qos_pipeline.tables import declared

DESCRIPTION = """All tables of ``warehouse/qos.duckdb``, rebuilt from every staged partition by the single
``duckdb_writer`` step and published only when its blocking checks (Great Expectations suites) pass.
A cell is one model version x prompt format x sampling config x design x judge.

- Staged rows: ``prompts``, ``generations``, ``judgments``, ``human_labels`` (views ``judged``,
  ``human_label_consensus``).
- ``label_rates_{model,group,name,popularity,gender,template}``: share of each label per cell and
  dimension, with two cluster-bootstrap 95% intervals (templates; templates x names) and the naive
  Wilson interval beside them for comparison.
- Group comparisons: ``disparities`` and ``group_comparisons`` (each group vs the reference group and the
  others, on the templates both carry: gaps and ratios with the group-level (templates x names) and the
  names-fixed bootstrap intervals, permutation p-values with their floor, adjusted within the primary
  family and apart in the exploratory one), ``group_effects_mixed`` (a mixed-effects logistic
  cross-check), ``significant_gaps``, ``name_sensitivity``, ``model_comparisons`` (cells with the same
  prompts), ``unjudged_by_group``.
- Checkpoints of a training run (``checkpoints``: family and order): ``checkpoint_trend`` (each group's
  gap over the checkpoints) and ``checkpoint_changes`` (each checkpoint vs the previous one and the
  first); the check ``metric_tables_checkpoint_regression`` gates the newest checkpoint of each family.
- Prediction-powered tables from human labels: ``label_rates_ppi``, ``group_comparisons_ppi`` (rates
  and gaps that stay valid when the judge errs), ``annotator_agreement``.
- Judge validations per measure: ``judge_validations``, ``judge_validation_labels``,
  ``judge_validation_confusion``, ``judge_validation_measures``, ``refusal_rates_corrected``.

Its metadata carries the findings, the gaps vs the reference group and the pictures (also written as
PNGs into the warehouse's ``plots/``). Every column: warehouse/README.md."""


def _description() -> str:
    """``DESCRIPTION`` and every declared table and view, with its grain (a new one is listed by itself)."""
    listed = "\n".join(f"- ``{t.name}``: {t.grain}" for t in declared() if t.kind != "taxonomy")
    return f"{DESCRIPTION}\n\nEvery table and view, as declared:\n\n{listed}"


@dg.asset(group_name="warehouse", kinds={"duckdb"}, pool="duckdb_writer", deps=["judgments", "judge_validations"],
          automation_condition=REBUILD, code_version=code_version(), check_specs=specs("metric_tables"),
          description=_description())
@failing_clearly
def metric_tables(context: dg.AssetExecutionContext, config: MetricTablesConfig, storage: Storage,
                  audit: AuditSettings, gate: RegressionGate) -> Iterator:
    """The warehouse, rebuilt and checked (the asset's description: ``DESCRIPTION``)."""
    paths = storage.paths()
    reference = config.reference_group or audit.reference(paths)
    gate.settings()  # a bad gate setting fails before the build, not after it
    try:
        counts, outcomes = rebuild_warehouse(paths.staging, paths.db, reference, config.stats(audit),
                                             notify=context.log.warning, lineage=lineage.frame(paths))
    except BlockedError as exc:  # not published: the suites' results still reach the UI before the step fails
        counts, outcomes = {}, exc.outcomes
    yield from stop_if_blocked(context, f"warehouse {paths.db}", outcomes)
    metadata: dict[str, Any] = {}
    if counts.get("label_rates_model"):  # published and not empty: the findings and pictures of this build
        written = write_plots(paths.db)  # first in the UI's metadata table: what the build found
        metadata["findings"] = dg.MetadataValue.md(
            markdown_summary(paths.db, {name: path.read_bytes() for name, path in written.items()}))
        metadata["plots"] = dg.MetadataValue.path(str(paths.db.parent / "plots"))
    metadata.update({f"rows/{t}": n for t, n in counts.items()}, path=str(paths.db))
    yield materialized(outcomes, metadata, [gate_result(paths.db, gate)])
