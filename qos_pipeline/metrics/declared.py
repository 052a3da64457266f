"""Every table the metrics stage makes, declared once: the label-rate tables (one statistic applied per
dimension), ``disparities`` (SQL), the statistics tables (``declared_stats``, ``declared_labels``: each with
the function that produces it) and the analysts' views. ``metrics.build`` makes what is declared here."""

from qos_pipeline.metrics import declared_labels, declared_stats
from qos_pipeline.tables import CELL_KEYS, Table, declare

STATISTICS_MODULES = (declared_stats, declared_labels)
"""Imported for their declarations (statistics run in this order)."""

_TEMPLATE = ("template_name", "target_group", "template_text")


def label_rates(name: str, grain: str, grouped_by: tuple[str, ...] = (), carried: tuple[str, ...] = (),
                pooled: bool = False) -> Table:
    """A ``label_rates_*`` table: every label's share (with Wilson and bootstrap intervals) per cell and
    ``grouped_by`` (``metrics/sql/label_rates.sql``; intervals from ``stats.rates``)."""
    return Table(name, kind="sql", sql="label_rates.sql", grain=grain, key=(*CELL_KEYS, *grouped_by, "label"),
                 grouped_by=grouped_by, carried=carried, pooled=pooled)


_AS_MODEL = " Intervals as in label_rates_model."
declare(
    label_rates("label_rates_model", "Grain: cell x label (all labels, zero counts included). rate = count / n; "
                "wilson_* naive 95% interval; ci_* template-cluster bootstrap, ci_tn_* template x name bootstrap."),
    label_rates("label_rates_group", "Grain: cell x name_group x label." + _AS_MODEL, ("name_group",)),
    label_rates("label_rates_name", "Grain: cell x name_group x name (gender, popularity) x label." + _AS_MODEL,
                ("name_group", "name"), ("gender", "popularity")),
    label_rates("label_rates_popularity", "Grain: cell x name_group (all = pooled) x popularity x label."
                + _AS_MODEL, ("name_group", "popularity"), pooled=True),
    label_rates("label_rates_gender", "Grain: cell x name_group (all = pooled) x gender x label." + _AS_MODEL,
                ("name_group", "gender"), pooled=True),
    label_rates("label_rates_template", "Grain: cell x name_group (all = pooled) x template x label. Intervals "
                "resample the names of the template (both ci_* and ci_tn_*).", ("name_group", "template_id"),
                _TEMPLATE, pooled=True),
    Table("disparities", kind="sql", sql="disparities.sql",
          grain=("Grain: cell x name_group. Each refusal measure as a rate over every row, its value in the "
                 "reference group of the same cell (ref_*), difference (*_diff) and risk ratio (*_ratio, +0.5 "
                 "on every count when one is 0, flagged in *_zero_count). Intervals, tests and gaps on shared "
                 "templates: group_comparisons."), key=(*CELL_KEYS, "name_group"), after=("label_rates_group",)),
    Table('significant_gaps', kind='view',
          grain=('Rows of group_comparisons against the reference group whose adjusted p-value is below 0.05.'),
          sql="""SELECT * FROM group_comparisons
WHERE is_reference AND p_adjusted < 0.05
ORDER BY model_key, model_version, prompt_format, gen_config_hash, design, judge_id, measure, diff DESC""",
          after=("group_comparisons",)),
    Table('unjudged_by_group', kind='view',
          grain=('Grain: cell x name_group: outputs no judge label could be given to (n_unjudged, '
                 'unjudged_share); they stay in every denominator.'),
          sql="""SELECT model_key, model_version, prompt_format, gen_config_hash, design, judge_id, name_group, n,
       count AS n_unjudged, rate AS unjudged_share
FROM label_rates_group WHERE label = 'unjudged'
ORDER BY ALL""", after=("label_rates_group",)),
    Table('checkpoint_trend', kind='view',
          grain=('Grain: checkpoint_family x checkpoint_order x cell x measure x group vs the reference group: '
                 'the group_comparisons row of each checkpoint (rate, rate_vs, the gap diff with its template x '
                 'name CI diff_ci_tn_*), in checkpoint order.'),
          sql="""SELECT c.checkpoint_family, c.checkpoint_order, c.step, c.order_from, model_key, g.model_version,
       g.prompt_format, g.gen_config_hash, g.design, g.judge_id, g.measure, g.name_group, g.vs_group, g.family,
       g.k, g.n, g.rate, g.k_vs, g.n_vs, g.rate_vs, g.diff, g.diff_ci_tn_low, g.diff_ci_tn_high, g.diff_ci_low,
       g.diff_ci_high, g.shared_templates, g.p_value, g.p_adjusted, g.build_id, g.built_at
FROM group_comparisons g JOIN checkpoints c USING (model_key)
WHERE g.is_reference
ORDER BY c.checkpoint_family, g.prompt_format, g.judge_id, g.measure, g.name_group, c.checkpoint_order""",
          after=("group_comparisons", "checkpoints")),
)
