"""Prediction-powered estimates: the tuned lambda and point estimate agree with ppi-python, and by
simulation a judge that misses one group's harmful refusals biases the judge-only gap but not the
prediction-powered one, whose interval keeps its coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qos_pipeline import taxonomy
from qos_pipeline.metrics.stats.cells import LABELS, cells_from_counts
from qos_pipeline.metrics.stats.ppi import ppi_tables, tuned_lambda

KEYS = ["model_key", "model_version", "prompt_format", "gen_config_hash", "design", "judge_id"]
GROUPS = {"muslim": 0.12, "white": 0.02}  # human harmful-refusal rates
TEMPLATES, NAMES, SAMPLES = 24, 8, 3


def simulate(rng, miss: dict[str, float], harmful: dict[str, float] = GROUPS):
    """Human and judge labels of every output of a two-group design (24 templates x 8 names per group x 3
    samples), template effects on the refusal rate; the judge calls a harmful refusal plain with
    probability ``miss[group]`` and is right otherwise."""
    shift = rng.normal(0, 0.6, TEMPLATES)
    rows = []
    for group, rate in harmful.items():
        for name in range(NAMES):
            for t in range(TEMPLATES):
                p_ref = 1 / (1 + np.exp(-(np.log(0.15 / 0.85) + shift[t])))
                u = rng.random(SAMPLES)
                human = np.where(u < rate, taxonomy.HARMFUL_REFUSAL,
                                 np.where(u < rate + p_ref, taxonomy.REFUSAL, taxonomy.ANSWER))
                judge = np.where((human == taxonomy.HARMFUL_REFUSAL) & (rng.random(SAMPLES) < miss[group]),
                                 taxonomy.REFUSAL, human)
                rows += [{"template_id": f"t{t:02d}", "name_group": group, "name": f"{group}{name}",
                          "human": h, "judge": j} for h, j in zip(human, judge)]
    return pd.DataFrame(rows)


def cell_and_pairs(outputs: pd.DataFrame, labelled: pd.DataFrame, resamples: int, seed: int = 0):
    counts = (outputs.groupby(["template_id", "name_group", "name", "judge"]).size().rename("k").reset_index()
              .rename(columns={"judge": "label"}).assign(gender="man", popularity="popular",
                                                         **dict(zip(KEYS, ("m", "v", "f", "h", "d", "j")))))
    [cell] = cells_from_counts(counts, KEYS)
    cell.draw(resamples, seed)
    pairs = np.zeros((len(cell.templates), len(cell.names), len(LABELS), len(LABELS)))
    np.add.at(pairs, (pd.Index(cell.templates).get_indexer(labelled["template_id"]),
                      pd.Index(cell.names).get_indexer(labelled["name"]),
                      pd.Index(LABELS).get_indexer(labelled["judge"]),
                      pd.Index(LABELS).get_indexer(labelled["human"])), 1)
    return cell, pairs


def sample(rng, outputs: pd.DataFrame, per_group: int) -> pd.DataFrame:
    return pd.concat([g.iloc[rng.choice(len(g), per_group, replace=False)]
                      for _, g in outputs.groupby("name_group", sort=True)])


def human_gap(outputs: pd.DataFrame, labels: tuple[str, ...]) -> float:
    rate = outputs.assign(y=outputs["human"].isin(labels)).groupby("name_group")["y"].mean()
    return rate["muslim"] - rate["white"]


def test_lambda_and_point_estimate_agree_with_ppi_python():
    import warnings

    with warnings.catch_warnings():
        import ppi_py

    rng = np.random.default_rng(0)
    y = (rng.random(80) < 0.3).astype(float)
    f = np.where(rng.random(80) < 0.85, y, 1 - y)
    unlabelled = (rng.random(900) < 0.3).astype(float)
    everything = np.concatenate([f, unlabelled])  # the judge labels every output, the labelled ones too
    s = {"n": len(everything), "f": everything.sum(), "m": len(y), "y": y.sum(), "fl": f.sum(), "yf": (y * f).sum()}
    lam = tuned_lambda(s)
    ours = lam * everything.mean() + (y - lam * f).mean()
    theirs = float(np.squeeze(ppi_py.ppi_mean_pointestimate(y, f, everything, lam=None)))
    assert 0 < lam < 1 and ours == pytest.approx(theirs, abs=1e-9)


def test_no_human_positive_in_the_sample_keeps_plain_ppi():
    # with y all 0 the tuned lambda would be 0 (the judge dropped, the estimate 0 with a [0, 0] interval)
    assert tuned_lambda({"n": 500, "f": 20, "m": 60, "y": 0, "fl": 2, "yf": 0}) == 1.0


@pytest.mark.slow  # a simulation of hundreds of audits: CI's tier
def test_a_judge_biased_against_one_group_biases_the_judge_gap_but_not_the_prediction_powered_one():
    """100 simulated audits, a 60-per-group human sample each: the judge misses 60% of Muslim names'
    harmful refusals and none of White names'. Judge-only harmful-refusal gap: biased by about -7 points
    (asserted below -4); prediction-powered gap: mean error within 0.7 points (3 standard errors of the
    mean of 100 runs) of the full human labels' gap; its template x name 95% interval covers that gap in at
    least 90 of 100 audits (nominal 95; 98% over 200 runs of this design in a longer run)."""
    rng = np.random.default_rng(7)
    errors, judge_errors, covered, covered_refusal = [], [], 0, 0
    for run in range(100):
        outputs = simulate(rng, {"muslim": 0.6, "white": 0.0})
        cell, pairs = cell_and_pairs(outputs, sample(rng, outputs, 60), resamples=200, seed=run)
        _, gaps = ppi_tables(cell, pairs, "white")
        gaps = gaps.set_index("measure")
        truth = human_gap(outputs, (taxonomy.HARMFUL_REFUSAL,))
        row = gaps.loc["harmful_refusal"]
        errors.append(row["diff"] - truth)
        judge_errors.append(row["judge_diff"] - truth)
        covered += row["diff_ci_tn_low"] <= truth <= row["diff_ci_tn_high"]
        refusal, refusal_truth = gaps.loc["refusal"], human_gap(outputs, (taxonomy.REFUSAL,))
        covered_refusal += refusal["diff_ci_tn_low"] <= refusal_truth <= refusal["diff_ci_tn_high"]
    assert np.mean(judge_errors) < -0.04
    assert abs(np.mean(errors)) < 0.007, np.mean(errors)
    assert covered >= 90 and covered_refusal >= 90, (covered, covered_refusal)


@pytest.mark.slow  # a simulation of hundreds of audits: CI's tier
def test_the_permutation_test_of_the_corrected_gap_holds_its_level_where_the_judge_errs_on_one_group():
    """No group effect (10% harmful refusals for both groups), the judge misses 60% of Muslim names' harmful
    refusals: over 100 simulated audits the judge-only gap is about -6 points and its permutation test
    rejects in most audits; the prediction-powered gap's permutation test (names permuted, each assignment
    corrected by the labels of the names it holds) rejects at about its nominal 5%: at most 10 of 100
    (measured: 7 of 100, and 96 of 100 for the judge-only test)."""
    from qos_pipeline.metrics.stats.compare import group_comparisons

    rng = np.random.default_rng(11)
    corrected, judge_only = 0, 0
    for run in range(100):
        outputs = simulate(rng, {"muslim": 0.6, "white": 0.0}, {"muslim": 0.10, "white": 0.10})
        cell, pairs = cell_and_pairs(outputs, sample(rng, outputs, 60), resamples=100, seed=run)
        _, gaps = ppi_tables(cell, pairs, "white")
        corrected += gaps.set_index("measure").loc["harmful_refusal", "p_value"] < 0.05
        plain = group_comparisons(cell, "white", seed=run).set_index("measure").loc["harmful_refusal"]
        judge_only += plain["p_value"] < 0.05
    assert corrected <= 10 and judge_only >= 50, (corrected, judge_only)
