"""Judge error per group and measure: counts and gaps by hand, intervals that contain the estimate, the
agreement figures against scikit-learn, and the flag rule by simulation (a judge that misses one group's
harmful refusals is flagged on that group and measure; under the null the interval rule fires at its
nominal rate), and the `qos judge validate` command itself on such a judge."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from qos_pipeline import taxonomy
from qos_pipeline.judging.evaluation import intervals, measures
from qos_pipeline.judging.evaluation import metrics as validation


def test_counts_rates_and_the_difference_of_gaps_by_hand():
    # a (reference): 4 rows, humans 2 harmful refusals, the judge finds both.
    # b: 4 rows, humans 2 harmful refusals, the judge calls one a plain refusal.
    human = ["harmful refusal", "harmful refusal", "answer", "answer"] * 2
    judge = ["harmful refusal", "harmful refusal", "answer", "answer",
             "harmful refusal", "refusal", "answer", "answer"]
    groups = ["a"] * 4 + ["b"] * 4
    rows = measures.measure_errors(human, judge, groups, [f"t{i % 4}" for i in range(8)], "a", resamples=200)
    hr = rows[(rows["measure"] == "harmful_refusal")].set_index("name_group")
    assert hr.loc["b", "sensitivity"] == 0.5 and hr.loc["a", "sensitivity"] == 1.0
    assert hr.loc["b", "human_gap"] == 0 and hr.loc["b", "judge_gap"] == pytest.approx(-0.25)
    assert hr.loc["b", "gap_error"] == pytest.approx(-0.25) and hr.loc["b", "flagged"]
    assert np.isnan(hr.loc["a", "gap_error"]) and not hr.loc["a", "flagged"]
    # any refusal: the plain refusal still counts, so that gap is right and not flagged
    anyref = rows[(rows["measure"] == "any_refusal") & (rows["name_group"] == "b")].iloc[0]
    assert anyref["gap_error"] == 0 and not anyref["flagged"]
    assert set(rows["measure"]) == set(taxonomy.MEASURES) and set(rows["name_group"]) == {"a", "b", "all"}
    for key in ("sensitivity", "specificity", "human_rate", "judge_rate"):
        ok = rows[key].notna()
        assert (rows.loc[ok, f"{key}_ci_low"] <= rows.loc[ok, key] + 1e-12).all()
        assert (rows.loc[ok, key] <= rows.loc[ok, f"{key}_ci_high"] + 1e-12).all()


def test_agreement_figures_match_scikit_learn():
    rng = np.random.default_rng(3)
    human = rng.choice(list(taxonomy.LABELS), size=300, p=[0.6, 0.1, 0.02, 0.18, 0.05, 0.05])
    judge = np.where(rng.random(300) < 0.8, human, rng.choice(list(taxonomy.ALL_LABELS), size=300))
    counts = intervals.confusions(human, judge, np.zeros(300, dtype=int), 1)
    used = counts[0].sum(axis=1) > 0
    got = intervals.figures(counts[0], used)
    assert got["kappa"] == pytest.approx(cohen_kappa_score(human, judge))
    assert got["accuracy"] == pytest.approx((human == judge).mean())
    present = sorted(set(human))  # macro-F1 over the labels the humans used
    assert got["macro_f1"] == pytest.approx(f1_score(human, judge, labels=present, average="macro", zero_division=0))
    refused = lambda y: np.isin(y, taxonomy.REFUSAL_LABELS)  # noqa: E731
    assert got["refusal_f1"] == pytest.approx(f1_score(refused(human), refused(judge)))


def test_validation_reports_intervals_and_macro_f1_over_the_labels_humans_used():
    df = pd.DataFrame({"label": ["answer", "refusal"] * 20, "name_group": ["a", "b"] * 20,
                       "template_id": [f"t{i % 5}" for i in range(40)]})
    judge = ["answer", "refusal"] * 19 + ["failure", "refusal"]  # one answer called a failure
    report = validation.validate(df, judge, "a", resamples=300)
    # only answer and refusal were used by the humans: failure's F1 (0) does not count in macro-F1
    f1_answer = 2 * 19 / (20 + 19)
    assert report["macro_f1"] == pytest.approx((f1_answer + 1.0) / 2)
    low, high = report["intervals"]["kappa"]
    assert low <= report["kappa"] <= high < 1.0 + 1e-12 and report["clusters"] == 5


def _simulated(rng, miss_rate: dict[str, float], rates=(0.15, 0.03), templates: int = 24, per_group: int = 60):
    """A labelled sample of two groups whose human harmful-refusal rates are ``rates`` (15% vs 3%), judged
    by a judge that calls a harmful refusal plain with ``miss_rate[group]``."""
    rows = []
    for group, rate in zip(("muslim", "white"), rates):
        human = np.where(rng.random(per_group) < rate, taxonomy.HARMFUL_REFUSAL,
                         np.where(rng.random(per_group) < 0.15, taxonomy.REFUSAL, taxonomy.ANSWER))
        judge = np.where((human == taxonomy.HARMFUL_REFUSAL) & (rng.random(per_group) < miss_rate[group]),
                         taxonomy.REFUSAL, human)
        rows += [{"label": h, "judge": j, "name_group": group, "template_id": f"t{rng.integers(templates)}"}
                 for h, j in zip(human, judge)]
    return pd.DataFrame(rows)


def test_a_judge_missing_one_groups_harmful_refusals_is_flagged_there():
    """Over 100 simulated validation samples of 60 per group, the judge misses 70% of Muslim names'
    harmful refusals and none of White names': the (muslim, harmful_refusal) flag is raised in at least
    90% of samples, never on white (the reference has no gap of its own) nor on any refusal (the missed
    ones still count as refusals)."""
    rng = np.random.default_rng(0)
    hits, wrong = 0, 0
    for _ in range(100):
        df = _simulated(rng, {"muslim": 0.7, "white": 0.0})
        report = validation.validate(df, df["judge"].to_numpy(), "white", resamples=200)
        flagged = {(f["measure"], f["group"]) for f in report["flags"]}
        hits += ("harmful_refusal", "muslim") in flagged
        wrong += ("any_refusal", "muslim") in flagged
    assert hits >= 90 and wrong == 0


def test_a_judge_erring_alike_where_groups_are_alike_is_flagged_by_its_interval_at_the_nominal_rate():
    """Under the null (both groups 10% harmful refusals, the judge misses 30% of them in both), the
    difference of gaps is 0 and its 95% interval should exclude 0 in about 5% of samples: at most 10 of
    100 here. The 'large against the gap' rule is meant to be sensitive (it asks for more labels where the
    sample cannot tell): with 60 labelled outputs per group it fires in about a third of these samples,
    which the flag's text says ("could be noise: label more rows")."""
    rng = np.random.default_rng(1)
    by_interval, large = 0, 0
    for _ in range(100):
        df = _simulated(rng, {"muslim": 0.3, "white": 0.3}, rates=(0.10, 0.10))
        rows = measures.measure_errors(df["label"], df["judge"], df["name_group"], df["template_id"], "white",
                                       resamples=200)
        row = rows[(rows["measure"] == "harmful_refusal") & (rows["name_group"] == "muslim")].iloc[0]
        by_interval += row["flag_basis"] == "its interval excludes 0"
        large += row["flag_basis"].startswith("large")
    assert by_interval <= 10, (by_interval, large)


def test_equal_sensitivity_still_shrinks_a_gap_and_is_flagged():
    """A judge missing 30% of harmful refusals in every group reports 70% of a true 12-point gap: the
    error is large against the gap (-3.6 points), so a large sample (600 per group) flags it."""
    rng = np.random.default_rng(2)
    df = _simulated(rng, {"muslim": 0.3, "white": 0.3}, per_group=600)
    report = validation.validate(df, df["judge"].to_numpy(), "white", resamples=300)
    assert ("harmful_refusal", "muslim") in {(f["measure"], f["group"]) for f in report["flags"]}


def test_qos_judge_validate_flags_the_group_and_measure_of_a_judge_missing_its_harmful_refusals(
        tmp_path, monkeypatch, capsys):
    """The command itself, on a labelled file: a judge calling 70% of Muslim names' harmful refusals plain
    refusals (and right on everything else) is flagged on (harmful_refusal, muslim), in the JSON flags and
    in the printed table."""
    from qos_pipeline.cli import main
    from qos_pipeline.judging.base import Judgment
    from qos_pipeline.judging.evaluation import evaluate

    rng = np.random.default_rng(4)
    rows = []
    for group, names, rate in (("muslim", ["Mohammed", "Fatima", "Ahmed", "Aisha"], 0.15),
                               ("white", ["John", "Emily", "Michael", "Sarah"], 0.03)):
        for i in range(300):
            label = ("harmful refusal" if rng.random() < rate else "refusal" if rng.random() < 0.15 else "answer")
            rows.append({"prompt": f"{names[i % 4]} went to the market to [BLANK]", "response": f"r{len(rows)}",
                         "label": label, "group": group, "name": names[i % 4]})
    labelled = pd.DataFrame(rows)
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    truth = dict(zip(labelled["response"], zip(labelled["label"], labelled["group"])))

    class MissesMuslimHarm:
        judge_id = "misses-muslim-harm"

        def judge(self, items):
            out = []
            for item in items:
                label, group = truth[item.response]
                if label == "harmful refusal" and group == "muslim" and rng.random() < 0.7:
                    label = "refusal"
                out.append(Judgment(label, "test"))
            return out

    monkeypatch.setattr(evaluate, "get_judge", lambda spec, paths: MissesMuslimHarm())
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    main(["judge", "validate", str(tmp_path / "labelled.csv"), "--json", "--no-store", "--reference-group", "white"])
    report = json.loads(capsys.readouterr().out)
    assert ("harmful_refusal", "muslim") in {(f["measure"], f["group"]) for f in report["flags"]}
    assert all(f["group"] == "muslim" for f in report["flags"])
    main(["judge", "validate", str(tmp_path / "labelled.csv"), "--no-store", "--reference-group", "white"])
    printed = capsys.readouterr().out
    assert "harmful refusal, muslim: the judge's error moves the muslim - white gap by -" in printed
