"""The mixed-model cross-check: it agrees with statsmodels' fit of the same model where that one is right,
recovers a planted group effect, keeps its level on null data, and says its disagreements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from qos_pipeline.metrics.stats import mixed
from qos_pipeline.metrics.stats.cells import cells_from_counts
from tests.metrics.test_stats import KEYS, cell_frame


def _cell(seed: int, effect: float, name_sd: float = 0.7, templates: int = 24, names: int = 8):
    rng = np.random.default_rng(seed)
    template = rng.normal(-1.5, 1.0, templates)
    refusals = {g: {f"{g}{i}": rng.binomial(3, expit(template + shift + rng.normal(0, name_sd))) for i in range(names)}
                for g, shift in (("a", effect), ("white", 0.0))}
    [cell] = cells_from_counts(cell_frame(refusals), KEYS)
    return cell


def _statsmodels_vb(cell):
    """statsmodels' BinomialBayesMixedGLM on the cell's outputs as 0/1 rows (same model, priors as wide)."""
    from scipy import sparse
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    K, n = cell.measure("refusal").astype(int), cell.n.astype(int)
    T, N = K.shape
    t, j = np.nonzero(n)
    tt, jj = np.repeat(t, n[t, j]), np.repeat(j, n[t, j])
    y = np.concatenate([np.r_[np.ones(K[a, b]), np.zeros(n[a, b] - K[a, b])] for a, b in zip(t, j)])
    X = np.column_stack([np.ones(len(y)), (cell.groups[jj] == "a").astype(float)])
    rows = np.arange(len(y))
    Z = sparse.csr_array((np.ones(2 * len(y)), (np.r_[rows, rows], np.r_[tt, T + jj])), shape=(len(y), T + N))
    return BinomialBayesMixedGLM(y, X, Z, np.r_[np.zeros(T, int), np.ones(N, int)], vcp_p=2,
                                 fe_p=mixed.FE_PRIOR_SD).fit_vb(rng=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fit_agrees_with_statsmodels_where_statsmodels_is_right(seed):
    # The same model fitted by statsmodels' variational Bayes on 0/1 rows: the same template and name SDs
    # (within 15%) and group effect (within 0.1); but its mean-field SD of the group effect, conditional on
    # the names' effects, is several times narrower than the Laplace standard error that integrates them.
    cell = _cell(seed, 1.0, name_sd=1.0)
    row = mixed.group_effects(cell, "refusal", "white").iloc[0]
    vb = _statsmodels_vb(cell)
    np.testing.assert_allclose([row["sd_template"], row["sd_name"]], np.exp(vb.vcp_mean), rtol=0.15)
    assert row["log_odds"] == pytest.approx(vb.fe_mean[1], abs=0.1)
    assert row["log_odds_se"] > 3 * vb.fe_sd[1]


def test_a_planted_group_effect_is_recovered():
    row = mixed.group_effects(_cell(3, 1.5), "refusal", "white").iloc[0]
    assert row["name_group"] == "a" and row["log_odds_ci_low"] < 1.5 < row["log_odds_ci_high"]
    assert row["log_odds_ci_low"] > 0 and row["converged"] and row["df"] == 14
    assert 0.5 < row["sd_template"] < 1.6 and row["odds_ratio"] == pytest.approx(np.exp(row["log_odds"]))


def test_the_interval_keeps_its_level_on_null_data():
    # 300 null audits (24 templates, 8 + 8 names, name SD 1 logit, no group effect): the interval excludes 0
    # in 5.0% of them (tolerance 8%, Monte Carlo sd ~1.3%). statsmodels' variational posterior alone
    # (conditional on the name effects) excluded 0 in ~75% of such audits.
    rejections = 0
    for sim in range(300):
        row = mixed.group_effects(_cell(500 + sim, 0.0, name_sd=1.0), "refusal", "white").iloc[0]
        rejections += row["log_odds_ci_low"] > 0 or row["log_odds_ci_high"] < 0
    assert rejections / 300 <= 0.08


def test_disagreements_with_the_design_based_interval_are_said():
    effects = pd.DataFrame({"measure": "any_refusal", "name_group": ["a", "b", "c"], "vs_group": "white",
                            "log_odds_ci_low": [0.2, -0.5, -0.3], "log_odds_ci_high": [1.0, 0.5, 0.4],
                            "separated": [False, False, True]})
    design = pd.DataFrame({"measure": "any_refusal", "name_group": ["a", "b", "c"], "vs_group": "white",
                           "diff_ci_tn_low": [0.01, 0.02, -0.1], "diff_ci_tn_high": [0.2, 0.3, 0.1]})
    out = mixed.agreement(effects, design).set_index("name_group")
    assert out.loc["a", "design_agrees"] and out.loc["a", "note"] == ""
    assert not out.loc["b", "design_agrees"] and out.loc["b", "note"].startswith("the design-based interval excludes 0")
    assert out.loc["c", "design_agrees"] and "bounded by the prior" in out.loc["c", "note"]
