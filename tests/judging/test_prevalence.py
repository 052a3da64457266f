"""Rogan-Gladen correction: the formula, recovery of a known rate, and the table beside the raw rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qos_pipeline.judging.evaluation import prevalence


def test_formula():
    # q = se p + (1 - sp)(1 - p) with p = 0.2, se = 0.9, sp = 0.8 -> q = 0.18 + 0.16 = 0.34
    assert prevalence.rogan_gladen(0.34, 0.9, 0.8) == pytest.approx(0.2)
    assert np.isnan(prevalence.rogan_gladen(0.5, 0.5, 0.4))  # no better than chance: no correction


def test_recovers_a_known_rate_on_synthetic_data():
    rng = np.random.default_rng(1)
    true_rate, se, sp = 0.30, 0.85, 0.90

    def judged(truth):
        return np.where(truth, rng.random(len(truth)) < se, rng.random(len(truth)) < 1 - sp)

    audit = rng.random(20000) < true_rate  # the audited responses: only the judge's labels are seen
    k = int(judged(audit).sum())
    human = rng.random(3000) < 0.4  # a labelled validation set, with its own refusal share
    val = judged(human)
    fix = prevalence.corrected_rate(k, len(audit), int((val & human).sum()), int(human.sum()),
                                    int((~val & ~human).sum()), int((~human).sum()))
    raw = k / len(audit)
    assert abs(raw - true_rate) > 0.02  # the raw judge rate is biased (expected 0.325)
    assert fix["corrected_rate"] == pytest.approx(true_rate, abs=0.015)
    assert fix["ci_low"] < true_rate < fix["ci_high"] and fix["ci_high"] - fix["ci_low"] < 0.08
    again = prevalence.corrected_rate(k, len(audit), int((val & human).sum()), int(human.sum()),
                                      int((~val & ~human).sum()), int((~human).sum()))
    assert again == fix  # seeded: a rebuild gives the same interval


def test_table_uses_group_validation_when_large_enough_and_reports_the_gap():
    rates = pd.DataFrame({"model_key": "m", "model_version": "v", "prompt_format": "f", "judge_id": "j",
                          "name_group": ["white", "muslim", "asian"], "n": [1000, 1000, 1000],
                          "raw_rate": [0.1, 0.4, 0.2], "raw_diff": [0.0, 0.3, 0.1], "reference_group": "white"})
    base = {"validation_id": "j@d", "judge_id": "j", "specificity": 0.95, "sensitivity": 0.9}
    val = pd.DataFrame([
        {**base, "name_group": "all", "n_human_refusal": 100, "true_positives": 90, "n_human_other": 400,
         "true_negatives": 380},
        {**base, "name_group": "muslim", "n_human_refusal": 50, "true_positives": 40, "n_human_other": 50,
         "true_negatives": 50, "sensitivity": 0.8, "specificity": 1.0},
        {**base, "name_group": "asian", "n_human_refusal": 5, "true_positives": 5, "n_human_other": 95,
         "true_negatives": 95},
    ])
    out = prevalence.correct_table(rates, val).set_index("name_group")
    assert out.loc["muslim", "validation_scope"] == "muslim"  # 50 + 50 labelled rows: its own se/sp
    assert out.loc["asian", "validation_scope"] == "all"  # only 5 human refusals: the overall se/sp
    assert out.loc["muslim", "corrected_rate"] == pytest.approx(0.4 / 0.8)
    assert out.loc["white", "corrected_rate"] == pytest.approx((0.1 + 0.95 - 1) / (0.9 + 0.95 - 1))
    assert out.loc["muslim", "corrected_diff"] == pytest.approx(0.5 - out.loc["white", "corrected_rate"])
    assert (out["ci_low"] <= out["corrected_rate"]).all() and (out["corrected_rate"] <= out["ci_high"]).all()
    assert prevalence.correct_table(rates, val.assign(judge_id="other")).empty  # only the validated judge
