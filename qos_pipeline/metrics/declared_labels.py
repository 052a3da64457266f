"""The statistics tables that use human labels: agreement between annotators, prediction-powered rates and
gaps, and refusal rates corrected for a validated judge's error rates; each declared once with the function
that produces its rows from the build's ``analysis.Context``."""

from __future__ import annotations

import pandas as pd

from qos_pipeline.judging.annotation.store import agreement
from qos_pipeline.metrics import labelled
from qos_pipeline.metrics.analysis import Context
from qos_pipeline.metrics.stats.corrected import corrected_rates
from qos_pipeline.metrics.stats.ppi import ppi_tables
from qos_pipeline.tables import CELL_COLUMNS, CELL_KEYS, Table, columns, declare


def annotator_agreement_of(ctx: Context) -> pd.DataFrame:
    """Every pair of annotators of a model: outputs both labelled, share agreeing, Cohen's kappa."""
    return agreement(ctx.con.execute("SELECT * FROM human_labels").df())


declare(
    Table('annotator_agreement', kind='statistic', bootstrap=False, key=("model_key", "annotator_a", "annotator_b"),
          grain=("Grain: model_key x pair of annotators: outputs both labelled (n), share agreeing and Cohen's "
                 'kappa.'),
          columns=columns(
              'model_key VARCHAR NOT NULL, annotator_a VARCHAR NOT NULL, annotator_b VARCHAR NOT NULL, '
              'n INTEGER NOT NULL, agreement DOUBLE, kappa DOUBLE'),
          producer=annotator_agreement_of))


def _ppi(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prediction-powered rates and gaps of every cell whose outputs carry human labels (made together)."""
    rates, gaps = [], []
    s = ctx.settings
    for cell in ctx.cells:
        part = labelled.of_cell(ctx.counts, ctx.cell_keys, cell.key)
        if len(part):
            r, g = ppi_tables(cell, labelled.pairs(cell, part), ctx.reference, s.p_adjust, s.primary_measure)
            keys = dict(zip(ctx.cell_keys, cell.key))
            rates.append(r.assign(**keys))
            gaps.append(g.assign(**keys))
    return (pd.concat(rates, ignore_index=True) if rates else pd.DataFrame(),
            pd.concat(gaps, ignore_index=True) if gaps else pd.DataFrame())


def ppi_rates(ctx: Context) -> pd.DataFrame:
    """Prediction-powered rate of every measure and group."""
    return ctx.shared("ppi", lambda: _ppi(ctx))[0]


def ppi_gaps(ctx: Context) -> pd.DataFrame:
    """Prediction-powered gap of every ordered pair of groups."""
    return ctx.shared("ppi", lambda: _ppi(ctx))[1]


declare(
    Table('label_rates_ppi', kind='statistic', key=(*CELL_KEYS, "measure", "name_group"),
          grain=('Grain: cell x measure x name_group (all = groups weighted by their outputs). Prediction-powered'
                 " rate: the judge's labels of every output plus the human-minus-judge correction on the human-"
                 'labelled ones (PPI++); ci_* resample templates, ci_tn_* templates and names; iid_ci_* treat '
                 'rows as independent (ppi-python, for comparison).'),
          columns=CELL_COLUMNS + columns(
              'measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, n INTEGER NOT NULL, '
              'n_labelled INTEGER NOT NULL, judge_rate DOUBLE, labelled_human_rate DOUBLE, rate DOUBLE, '
              'lam DOUBLE, ci_low DOUBLE, ci_high DOUBLE, ci_tn_low DOUBLE, ci_tn_high DOUBLE, iid_rate DOUBLE, '
              'iid_ci_low DOUBLE, iid_ci_high DOUBLE, note VARCHAR'),
          producer=ppi_rates))
declare(
    Table('group_comparisons_ppi', kind='statistic', key=(*CELL_KEYS, "measure", "name_group", "vs_group"),
          grain=('Grain: cell x measure x ordered pair of groups. Prediction-powered gap (valid when the judge '
                 'errs, also differently between groups), with the judge-only gap beside it; family primary = '
                 'each group vs the reference group on the primary measure (Holm within it), secondary adjusted '
                 'apart.'),
          columns=CELL_COLUMNS + columns(
              'measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, '
              'is_reference BOOLEAN NOT NULL, n INTEGER NOT NULL, n_vs INTEGER NOT NULL, '
              'n_labelled INTEGER NOT NULL, n_labelled_vs INTEGER NOT NULL, rate DOUBLE, rate_vs DOUBLE, '
              'lam DOUBLE, lam_vs DOUBLE, judge_diff DOUBLE, diff DOUBLE, diff_ci_low DOUBLE, diff_ci_high DOUBLE, '
              'diff_ci_tn_low DOUBLE, diff_ci_tn_high DOUBLE, p_value DOUBLE, p_method VARCHAR NOT NULL, '
              'permutations INTEGER NOT NULL, p_floor DOUBLE, family VARCHAR NOT NULL, p_adjusted DOUBLE, '
              'p_adjust_method VARCHAR NOT NULL'),
          producer=ppi_gaps))


def corrected_rates_of(ctx: Context) -> pd.DataFrame:
    """Any-refusal rates corrected for each validated judge's sensitivity and specificity (Rogan-Gladen)."""
    validations = ctx.con.execute("SELECT * FROM judge_validations").df()
    if validations.empty:
        return pd.DataFrame()
    return ctx.per_cell(lambda c: corrected_rates(c, dict(zip(ctx.cell_keys, c.key)), validations, ctx.reference,
                                                  ctx.settings.seed))


declare(
    Table('refusal_rates_corrected', kind='statistic', key=(*CELL_KEYS, "name_group", "validation_id"),
          grain=("Grain: cell x name_group x validation_id. any_refusal rate corrected for the judge's "
                 'sensitivity/specificity (Rogan-Gladen) with one joint bootstrap of templates and Beta '
                 'posteriors of the error rates.'),
          columns=CELL_COLUMNS + columns(
              'name_group VARCHAR NOT NULL, n BIGINT NOT NULL, raw_rate DOUBLE NOT NULL, raw_ci_low DOUBLE, '
              'raw_ci_high DOUBLE, raw_diff DOUBLE, corrected_rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE, '
              'corrected_diff DOUBLE, corrected_diff_ci_low DOUBLE, corrected_diff_ci_high DOUBLE, '
              'reference_group VARCHAR, validation_id VARCHAR NOT NULL, validation_scope VARCHAR NOT NULL, '
              'sensitivity DOUBLE, specificity DOUBLE, valid_draws INTEGER, note VARCHAR, warning VARCHAR'),
          producer=corrected_rates_of))
