"""The statistics tables of the group comparisons, their model-based cross-check, name sensitivity, and the
comparisons of models and of a training run's checkpoints: each declared once with the function that
produces its rows from the build's ``analysis.Context``."""

from __future__ import annotations

import pandas as pd

from qos_pipeline.metrics.analysis import Context
from qos_pipeline.metrics.stats.checkpoints import checkpoint_changes
from qos_pipeline.metrics.stats.compare import group_comparisons
from qos_pipeline.metrics.stats.mixed import agreement, group_effects
from qos_pipeline.metrics.stats.models import model_comparisons
from qos_pipeline.metrics.stats.sensitivity import name_sensitivity
from qos_pipeline.tables import CELL_COLUMNS, CELL_KEYS, PAIR, Table, columns, declare

COMPARISON_COLUMNS = columns(
    "model_key_a VARCHAR NOT NULL, model_version_a VARCHAR NOT NULL, gen_config_hash_a VARCHAR NOT NULL, "
    "design_a VARCHAR NOT NULL, model_key_b VARCHAR NOT NULL, model_version_b VARCHAR NOT NULL, "
    "gen_config_hash_b VARCHAR NOT NULL, design_b VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL, "
    "judge_id VARCHAR NOT NULL, measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, "
    "family VARCHAR NOT NULL, shared_templates INTEGER NOT NULL, gap_a DOUBLE, gap_b DOUBLE, diff_of_gaps DOUBLE, "
    "ci_low DOUBLE, ci_high DOUBLE, ci_tn_low DOUBLE, ci_tn_high DOUBLE, p_value DOUBLE, flips INTEGER NOT NULL, "
    "p_adjusted DOUBLE, p_adjust_method VARCHAR NOT NULL")
"""The columns of a comparison of two cells (``model_comparisons``, and ``checkpoint_changes`` after its own)."""
COMPARED = (*PAIR, "prompt_format", "judge_id", "measure", "name_group", "vs_group")
"""The key of a comparison of two cells: the pair, what they share, and the gap compared."""


def group_comparisons_of(ctx: Context) -> pd.DataFrame:
    """Every ordered pair of groups of every cell, on every measure (``stats.compare``)."""
    s = ctx.settings
    return ctx.per_cell(lambda c: group_comparisons(c, ctx.reference, s.seed, s.p_adjust, s.primary_measure))


declare(
    Table('group_comparisons', kind='statistic', key=(*CELL_KEYS, "measure", "name_group", "vs_group"),
          grain=('Grain: cell x measure x ordered pair of groups (name_group vs vs_group; is_reference when '
                 'vs_group is the reference group). On the templates every name of both groups carries '
                 '(shared_templates; rows of others counted in n_dropped*), paired within template: bootstrap CIs'
                 ' of the difference and log ratio (headline: *_ci_tn_*, templates x names; *_ci_* holds names '
                 'fixed), permutation p-value of group labels between names (floor p_floor), adjusted within its '
                 'family (primary: each group vs the reference on the primary measure; secondary: the rest, '
                 'exploratory).'),
          columns=CELL_COLUMNS + columns(
              'measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, '
              'is_reference BOOLEAN NOT NULL, family VARCHAR NOT NULL, templates INTEGER NOT NULL, '
              'shared_templates INTEGER NOT NULL, names INTEGER NOT NULL, names_vs INTEGER NOT NULL, '
              'k BIGINT NOT NULL, n BIGINT NOT NULL, rate DOUBLE, n_unjudged BIGINT NOT NULL, '
              'n_dropped BIGINT NOT NULL, k_vs BIGINT NOT NULL, n_vs BIGINT NOT NULL, rate_vs DOUBLE, '
              'n_unjudged_vs BIGINT NOT NULL, n_dropped_vs BIGINT NOT NULL, diff DOUBLE, diff_ci_low DOUBLE, '
              'diff_ci_high DOUBLE, diff_ci_tn_low DOUBLE, diff_ci_tn_high DOUBLE, ratio DOUBLE, log_ratio DOUBLE, '
              'log_ratio_ci_low DOUBLE, log_ratio_ci_high DOUBLE, log_ratio_ci_tn_low DOUBLE, '
              'log_ratio_ci_tn_high DOUBLE, ratio_zero_count BOOLEAN NOT NULL, p_value DOUBLE, '
              'p_method VARCHAR NOT NULL, permutations INTEGER NOT NULL, p_floor DOUBLE, p_adjusted DOUBLE, '
              'p_adjust_method VARCHAR NOT NULL, family_size INTEGER NOT NULL, p_adjusted_floor DOUBLE, '
              'names_needed INTEGER'),
          producer=group_comparisons_of))


def mixed_effects(ctx: Context) -> pd.DataFrame:
    """The mixed-model cross-check of each cell's primary gaps, set beside the design-based intervals."""
    return ctx.per_cell(lambda c: agreement(group_effects(c, ctx.settings.primary_measure, ctx.reference),
                                            ctx.of("group_comparisons", c)))


declare(
    Table('group_effects_mixed', kind='statistic', key=(*CELL_KEYS, "measure", "name_group", "vs_group"),
          grain=('Grain: cell x primary measure x group vs the reference group. Model-based cross-check: mixed-'
                 'effects logistic regression with crossed random intercepts for template and name (Laplace '
                 "approximation, as lme4's glmer), on counts per (template, name); design_agrees says whether its"
                 ' interval and the design-based template x name interval agree on excluding 0.'),
          columns=CELL_COLUMNS + columns(
              'measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, log_odds DOUBLE, '
              'log_odds_se DOUBLE, log_odds_ci_low DOUBLE, log_odds_ci_high DOUBLE, odds_ratio DOUBLE, '
              'df INTEGER NOT NULL, sd_template DOUBLE, sd_name DOUBLE, converged BOOLEAN NOT NULL, '
              'method VARCHAR NOT NULL, design_agrees BOOLEAN, note VARCHAR'),
          producer=mixed_effects, after=('group_comparisons',)))


def name_sensitivity_of(ctx: Context) -> pd.DataFrame:
    """Each name's rate and the group gap without it."""
    return ctx.per_cell(lambda c: name_sensitivity(c, ctx.reference).assign(reference_group=ctx.reference))


declare(
    Table('name_sensitivity', kind='statistic', key=(*CELL_KEYS, "measure", "name_group", "name"),
          grain=('Grain: cell x measure x name. Per-name rate with template-cluster CI and rank in its group; the'
                 ' group gap to the reference recomputed without that name.'),
          columns=CELL_COLUMNS + columns(
              'measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, name VARCHAR NOT NULL, gender VARCHAR, '
              'popularity VARCHAR, k BIGINT NOT NULL, n BIGINT NOT NULL, rate DOUBLE, ci_low DOUBLE, '
              'ci_high DOUBLE, rank_in_group INTEGER NOT NULL, names_in_group INTEGER NOT NULL, '
              'gap_vs_reference DOUBLE, gap_without_name DOUBLE, shift DOUBLE, most_extreme BOOLEAN NOT NULL, '
              'reference_group VARCHAR NOT NULL'),
          producer=name_sensitivity_of))


def model_comparisons_of(ctx: Context) -> pd.DataFrame:
    """Every pair of cells with the same prompts: the difference of their gaps."""
    s = ctx.settings
    return model_comparisons(ctx.cells, ctx.cell_keys, ctx.reference, s.seed, s.p_adjust, s.primary_measure)


declare(
    Table('model_comparisons', kind='statistic', key=COMPARED,
          grain=('Grain: pair of cells sharing prompt format, judge and prompts (same templates and names, '
                 'whatever their design key; model A vs B) x measure x group vs reference. Difference of the two '
                 'gaps (gap_a - gap_b) on the templates both cells share, with a paired cluster-bootstrap CI and '
                 'a template-flip p-value, adjusted within the pair and family.'),
          columns=COMPARISON_COLUMNS,
          producer=model_comparisons_of))


def checkpoints_of(ctx: Context) -> pd.DataFrame:
    """The checkpoints' lineage, numbered within each family by step, then (those without one) by the time
    they appeared, then by key (so two that appeared together keep one order on every build)."""
    if ctx.lineage is None or ctx.lineage.empty:
        return pd.DataFrame()
    frame = ctx.lineage.assign(appeared_at=pd.to_datetime(ctx.lineage["appeared_at"], utc=True),
                               no_step=ctx.lineage["step"].isna())
    frame = frame.sort_values(["checkpoint_family", "no_step", "step", "appeared_at", "model_key"])
    frame["checkpoint_order"] = frame.groupby("checkpoint_family").cumcount() + 1
    return frame.drop(columns="no_step").reset_index(drop=True)


declare(
    Table('checkpoints', kind='statistic', bootstrap=False, key=("model_key",),
          grain=('Grain: model_key (a checkpoint with a family). Its training run (checkpoint_family: the watched'
                 ' folder, or qos run --family) and its place in it: checkpoint_order numbers the family by step,'
                 ' then (no step) by the time the checkpoint appeared.'),
          columns=columns(
              'model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, checkpoint_family VARCHAR NOT NULL, '
              'checkpoint_order INTEGER NOT NULL, step BIGINT, order_from VARCHAR NOT NULL, '
              'appeared_at TIMESTAMPTZ NOT NULL, folder VARCHAR NOT NULL'),
          producer=checkpoints_of))


def checkpoint_changes_of(ctx: Context) -> pd.DataFrame:
    """Each checkpoint against the previous one of its family and against its first."""
    lineage = ctx.frames.get("checkpoints", pd.DataFrame())
    s = ctx.settings
    return checkpoint_changes(ctx.cells, ctx.cell_keys, lineage, ctx.reference, s.seed, s.p_adjust,
                              s.primary_measure)


declare(
    Table('checkpoint_changes', kind='statistic', key=("against", *COMPARED),
          grain=('Grain: checkpoint x against (previous: the nearest earlier checkpoint of the family with the '
                 'same prompt format, judge, sampling config and prompts; first: the earliest such) x measure x '
                 'group vs reference. The columns of model_comparisons with A = the later checkpoint: '
                 'diff_of_gaps > 0 means the gap grew; paired cluster-bootstrap CIs and template-flip p-value '
                 'adjusted within the pair and family.'),
          columns=columns(
              'checkpoint_family VARCHAR NOT NULL, against VARCHAR NOT NULL, checkpoint_order_a INTEGER NOT NULL, '
              'checkpoint_order_b INTEGER NOT NULL') + COMPARISON_COLUMNS,
          producer=checkpoint_changes_of, after=('checkpoints',)))
