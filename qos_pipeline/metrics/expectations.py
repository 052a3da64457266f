"""Great Expectations suites on the DuckDB tables, run on a finished build before it is published.

GE 1.x is called directly with an ephemeral context (``dagster-ge`` only supports GE < 1.0).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from qos_pipeline import tables
from qos_pipeline.checks import CheckOutcome
from qos_pipeline.metrics.build import label_rate_tables
from qos_pipeline.tables import CELL_KEYS
from qos_pipeline.tables.checks import (
    METRIC_TABLES_COMPARISONS_VALID,
    METRIC_TABLES_DESIGN_COMPLETE,
    METRIC_TABLES_GROUPS_PRESENT,
    METRIC_TABLES_JUDGE_TABLES_VALID,
    METRIC_TABLES_KEYS_UNIQUE,
    METRIC_TABLES_LABELS_IN_TAXONOMY,
    METRIC_TABLES_NO_ORPHAN_JUDGMENTS,
    METRIC_TABLES_ONE_CONFIG_PER_MODEL,
    METRIC_TABLES_PARTITIONS_JUDGED,
    METRIC_TABLES_RATES_IN_RANGE,
    METRIC_TABLES_RATES_SUM_TO_ONE,
    METRIC_TABLES_REFERENCE_GROUP_PRESENT,
)
from qos_pipeline.taxonomy import ALL_LABELS


def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def run_suite(ctx, name: str, df: pd.DataFrame, expectations: list) -> CheckOutcome:
    """Validate ``df`` against ``expectations``; the outcome lists each failed expectation."""
    import great_expectations as gx

    asset = ctx.data_sources.add_pandas(name).add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    result = batch.validate(suite)
    failed = [_failure(r, df) for r in result.results if not r.success]
    desc = f"{len(result.results) - len(failed)}/{len(result.results)} expectations met on {len(df)} rows"
    return CheckOutcome(name, not failed, desc, {"failed": "\n".join(failed) or "none"})


def _failure(r, df: pd.DataFrame) -> str:
    """One failed expectation in words: its values for a column expectation, the offending rows for a
    table expectation (e.g. the model x judge x group cells that are missing)."""
    config = r.expectation_config
    column = config.kwargs.get("column") or config.kwargs.get("column_A")
    if column is not None:
        return (f"{config.type}({column}): {r.result.get('unexpected_count', '')} unexpected, "
                f"e.g. {r.result.get('partial_unexpected_list', [])[:3]}")
    return f"{config.type}: observed {r.result.get('observed_value')}; rows: {df.head(10).to_dict('records')}"


def _rate_rows(con) -> pd.DataFrame:
    parts = [f"SELECT '{t.name}' AS tbl, label, rate, ci_low, ci_high, ci_tn_low, ci_tn_high, wilson_low, "
             "wilson_high, n "
             f"FROM {t.name}" for t in label_rate_tables()]
    return con.execute(" UNION ALL ".join(parts)).df()


def _rate_sums(con) -> pd.DataFrame:
    parts = []
    for table in label_rate_tables():
        keys = ", ".join(CELL_KEYS + list(table.grouped_by + table.carried))
        parts.append(f"SELECT '{table.name}' AS tbl, sum(rate) AS rate_sum FROM {table.name} GROUP BY {keys}")
    return con.execute(" UNION ALL ".join(parts)).df()


_JUDGED_PARTITIONS = """(SELECT DISTINCT g.model_key, g.model_version, g.prompt_format, g.name_group
    FROM generations g JOIN judgments j USING (generation_id))"""


def _missing_groups(con) -> pd.DataFrame:
    # A judge counted for a model must cover every group that the model has generations for (in any config:
    # a group generated under another config is missing from this one's comparisons), among the groups that
    # some judge has labelled: a partition no judge has labelled yet is mid-audit (see _awaiting_judgments).
    return con.execute(f"""
        SELECT DISTINCT g.model_key, g.model_version, g.prompt_format, j.judge_id, g.name_group
        FROM {_JUDGED_PARTITIONS} g
          JOIN (SELECT DISTINCT model_key, model_version, prompt_format, judge_id FROM judged) j
          USING (model_key, model_version, prompt_format)
        EXCEPT SELECT model_key, model_version, prompt_format, judge_id, name_group FROM label_rates_group
    """).df()


def _awaiting_judgments(con) -> pd.DataFrame:
    # Generations partitions without a single label: another run's generations step has written them and its
    # judgments step has not yet (concurrent runs), or judging them failed. They are in no rate or comparison.
    return con.execute(f"""
        SELECT model_key, model_version, prompt_format, name_group, count(*) AS generations
        FROM generations
        WHERE (model_key, model_version, prompt_format, name_group) NOT IN (SELECT * FROM {_JUDGED_PARTITIONS})
        GROUP BY ALL ORDER BY ALL
    """).df()


def _mixed_configs(con) -> pd.DataFrame:
    # Groups of one model generated under different sampling settings or designs: each config is a cell of
    # its own, so a group without a reference-group twin in its config has no disparity.
    return con.execute("""
        SELECT model_key, model_version, prompt_format,
               string_agg(DISTINCT gen_config_hash || ' / ' || design || ': ' || name_group, '; '
                          ORDER BY gen_config_hash || ' / ' || design || ': ' || name_group) AS groups_by_config
        FROM (SELECT DISTINCT model_key, model_version, prompt_format, gen_config_hash, design, name_group
              FROM generations)
        GROUP BY ALL HAVING count(DISTINCT (gen_config_hash, design)) > 1 ORDER BY ALL
    """).df()


def _incomplete_grids(con) -> pd.DataFrame:
    # Every group of a cell should carry every template of the cell with every name: comparisons are paired
    # within template and made on the templates both groups share, so a gap (a group missing templates, a
    # name missing prompts) shrinks what is compared. Listed per group, with the (template, name) prompts missing.
    keys = ", ".join(CELL_KEYS)
    return con.execute(f"""
        WITH slots AS (SELECT DISTINCT {keys}, name_group, name, template_id FROM judged),
        cells AS (SELECT {keys}, count(DISTINCT template_id) AS templates FROM slots GROUP BY ALL),
        grid AS (SELECT {keys}, name_group, count(DISTINCT name) AS names,
                        count(DISTINCT template_id) AS templates_with_rows, count(*) AS prompts
                 FROM slots GROUP BY ALL)
        SELECT {keys}, name_group, names, templates, templates_with_rows,
               templates * names - prompts AS missing_prompts
        FROM grid JOIN cells USING ({keys}) WHERE templates * names > prompts ORDER BY ALL
    """).df()


def _orphan_judgments(con) -> pd.DataFrame:
    # Labels of responses that were replaced since (a judge not re-run after new generations): never counted.
    return con.execute("""
        SELECT model_key, model_version, prompt_format, judge_id, count(*) AS labels
        FROM judgments j ANTI JOIN generations g USING (generation_id) GROUP BY ALL ORDER BY ALL
    """).df()


def _repeated_keys(con) -> pd.DataFrame:
    """A row per metric table whose declared key (``qos_pipeline.tables``) repeats: the table, an example key
    and how often it occurs (up to 3 keys per table)."""
    built = set(tables.metric_tables())
    parts = [f"(SELECT '{t.name}' AS tbl, CAST(struct_pack({', '.join(t.key)}) AS VARCHAR) AS key, count(*) AS rows "
             f"FROM {t.name} GROUP BY ALL HAVING count(*) > 1 LIMIT 3)" for t in tables.declared()
             if t.name in built and t.key]
    return con.execute(" UNION ALL ".join(parts)).df()


def validate_database(db: Path) -> list[CheckOutcome]:
    """The metric tables' suites; blocking outcomes that fail must stop the build from being published."""
    import duckdb
    import great_expectations.expectations as gxe

    ctx = _context()
    with duckdb.connect(str(db), read_only=True) as con:
        rates, sums, missing, orphans = _rate_rows(con), _rate_sums(con), _missing_groups(con), _orphan_judgments(con)
        mixed, awaiting, incomplete = _mixed_configs(con), _awaiting_judgments(con), _incomplete_grids(con)
        repeated = _repeated_keys(con)
        # every (label, judge) pair once, with its count: the same expectations, in memory flat in the rows
        judgments = con.execute("SELECT label, judge_id, count(*) AS n FROM judgments GROUP BY ALL").df()
        disparities = con.execute("SELECT * FROM disparities").df()
        comparisons = con.execute("SELECT p_value, p_adjusted, diff, diff_ci_low, diff_ci_high FROM group_comparisons "
                                  "UNION ALL BY NAME SELECT p_value, p_adjusted, diff_of_gaps AS diff, ci_low AS "
                                  "diff_ci_low, ci_high AS diff_ci_high FROM model_comparisons UNION ALL BY NAME "
                                  "SELECT p_value, p_adjusted, diff_of_gaps AS diff, ci_low AS diff_ci_low, ci_high "
                                  "AS diff_ci_high FROM checkpoint_changes").df()
    return [
        run_suite(ctx, METRIC_TABLES_RATES_IN_RANGE, rates, [
            gxe.ExpectColumnValuesToBeBetween(column="rate", min_value=0, max_value=1),
            *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1)
              for c in ("ci_low", "ci_high", "ci_tn_low", "ci_tn_high", "wilson_low", "wilson_high")],
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="rate", column_B="ci_low", or_equal=True,
                                                        ignore_row_if="either_value_is_missing"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ci_high", column_B="rate", or_equal=True,
                                                        ignore_row_if="either_value_is_missing"),
            gxe.ExpectColumnValuesToBeBetween(column="n", min_value=1),
        ]),
        run_suite(ctx, METRIC_TABLES_RATES_SUM_TO_ONE, sums, [
            gxe.ExpectColumnValuesToBeBetween(column="rate_sum", min_value=1 - 1e-9, max_value=1 + 1e-9),
        ]),
        run_suite(ctx, METRIC_TABLES_LABELS_IN_TAXONOMY, judgments, [
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(ALL_LABELS)),
            gxe.ExpectColumnValuesToNotBeNull(column="judge_id"),
        ]),
        run_suite(ctx, METRIC_TABLES_GROUPS_PRESENT, missing, [gxe.ExpectTableRowCountToEqual(value=0)]),
        run_suite(ctx, METRIC_TABLES_COMPARISONS_VALID, comparisons, [
            *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1) for c in ("p_value", "p_adjusted")],
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="p_adjusted", column_B="p_value", or_equal=True,
                                                        ignore_row_if="either_value_is_missing"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="diff", column_B="diff_ci_low", or_equal=True,
                                                        ignore_row_if="either_value_is_missing"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="diff_ci_high", column_B="diff", or_equal=True,
                                                        ignore_row_if="either_value_is_missing")]),
        run_suite(ctx, METRIC_TABLES_PARTITIONS_JUDGED, awaiting, [gxe.ExpectTableRowCountToEqual(value=0)]),
        run_suite(ctx, METRIC_TABLES_ONE_CONFIG_PER_MODEL, mixed, [gxe.ExpectTableRowCountToEqual(value=0)]),
        run_suite(ctx, METRIC_TABLES_NO_ORPHAN_JUDGMENTS, orphans, [gxe.ExpectTableRowCountToEqual(value=0)]),
        run_suite(ctx, METRIC_TABLES_DESIGN_COMPLETE, incomplete, [gxe.ExpectTableRowCountToEqual(value=0)]),
        run_suite(ctx, METRIC_TABLES_REFERENCE_GROUP_PRESENT, disparities, [
            gxe.ExpectColumnValuesToNotBeNull(column="ref_any_refusal_rate"),
        ]),
        run_suite(ctx, METRIC_TABLES_KEYS_UNIQUE, repeated, [gxe.ExpectTableRowCountToEqual(value=0)]),
        judge_tables_suite(ctx, db),
    ]


def judge_tables_suite(ctx, db: Path) -> CheckOutcome:
    """``metric_tables_judge_tables_valid``: validation figures and corrected rates in range, the
    corrected rate inside its interval. One outcome over both tables (they are built together)."""
    import duckdb
    import great_expectations.expectations as gxe

    with duckdb.connect(str(db), read_only=True) as con:
        vals = con.execute("SELECT accuracy, macro_f1, refusal_f1, kappa, n FROM judge_validations").df()
        corr = con.execute("SELECT corrected_rate, ci_low, ci_high, raw_rate FROM refusal_rates_corrected "
                           "WHERE corrected_rate IS NOT NULL").df()
    unit = [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1) for c in ("accuracy", "macro_f1")]
    outcomes = [
        run_suite(ctx, "judge_validations_in_range", vals, [
            *unit, gxe.ExpectColumnValuesToBeBetween(column="refusal_f1", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="kappa", min_value=-1, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="n", min_value=1)]),
        run_suite(ctx, "refusal_rates_corrected_in_range", corr, [
            *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1)
              for c in ("corrected_rate", "ci_low", "ci_high", "raw_rate")],
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="corrected_rate", column_B="ci_low", or_equal=True,
                                                        ignore_row_if="either_value_is_missing"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ci_high", column_B="corrected_rate", or_equal=True,
                                                        ignore_row_if="either_value_is_missing")]),
    ]
    return CheckOutcome(METRIC_TABLES_JUDGE_TABLES_VALID, all(o.passed for o in outcomes),
                        "; ".join(f"{o.name}: {o.description}" for o in outcomes),
                        {o.name: o.metadata["failed"] for o in outcomes})
