"""Validation metrics against values computed by hand, group flags, and the figures on the pilot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qos_pipeline.judging.evaluation import metrics as validation
from tests.paths import need_pilot

# Six rows, two groups. By hand (rows: human, judge):
#   a: answer/answer, answer/refusal, refusal/refusal      b: refusal/refusal, harmful refusal/refusal, failure/unjudged
HUMAN = ["answer", "answer", "refusal", "refusal", "harmful refusal", "failure"]
JUDGE = ["answer", "refusal", "refusal", "refusal", "refusal", "unjudged"]
GROUPS = ["a", "a", "a", "b", "b", "b"]


@pytest.fixture()
def report():
    df = pd.DataFrame({"label": HUMAN, "name_group": GROUPS})
    return validation.validate(df, JUDGE, reference_group="a")


def test_overall_metrics_match_hand_computed_values(report):
    assert report["n"] == 6 and report["n_unjudged"] == 1
    assert report["accuracy"] == pytest.approx(3 / 6)
    # F1: answer 2/3 (P 1, R 1/2), refusal 2/3 (P 2/4, R 1), harmful refusal 0, failure 0; the two labels
    # absent from both sides do not count.
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0 + 0) / 4)
    # Kappa over 7 values: po = 3/6; human marginals answer 2, refusal 2, HR 1, failure 1; judge answer 1,
    # refusal 4, unjudged 1 -> pe = (2*1 + 2*4) / 36; kappa = (1/2 - 10/36) / (1 - 10/36) = 8/26.
    assert report["kappa"] == pytest.approx(8 / 26)
    # Refusal vs not: tp 3, fp 1 (row 2), fn 0, tn 2 -> F1 6/7, sensitivity 1, specificity 2/3.
    assert report["refusal_f1"] == pytest.approx(6 / 7)
    assert (report["sensitivity"], report["specificity"]) == (pytest.approx(1.0), pytest.approx(2 / 3))
    assert report["refusal_bias"] == pytest.approx(4 / 6 - 3 / 6)
    labels = report["per_label"]
    assert labels["answer"]["precision"] == 1 and labels["answer"]["recall"] == 0.5
    assert labels["refusal"]["precision"] == 0.5 and labels["refusal"]["support"] == 2
    assert np.isnan(labels["harmful refusal"]["precision"]) and labels["harmful refusal"]["recall"] == 0
    assert report["confusion"]["failure"]["unjudged"] == 1 and report["confusion"]["answer"]["refusal"] == 1


def test_per_group_metrics_and_error_gap_flag(report):
    a, b = report["per_group"]["a"], report["per_group"]["b"]
    assert a["accuracy"] == pytest.approx(2 / 3) and b["accuracy"] == pytest.approx(1 / 3)
    assert a["refusal_f1"] == pytest.approx(2 / 3) and b["refusal_f1"] == pytest.approx(1.0)
    # Humans: a refuses 1/3, b 2/3 (a true gap of +1/3); the judge says 2/3 for both (measured gap 0),
    # because it over-counts refusals in a only. That error gap hides the disparity: b is flagged.
    assert b["measured_diff_vs_ref"] == pytest.approx(0.0)
    assert b["bias_diff_vs_ref"] == pytest.approx(0 - 1 / 3)
    assert b["flagged"] and not a["flagged"]
    flagged = {(f["measure"], f["group"]) for f in report["flags"]}
    # b's harmful refusal is called a plain one: any refusal (over-counted in a only) and harmful refusal
    # (missed in b only) are flagged; plain refusal is over-counted by 1/3 in both groups, so its gap is right.
    assert flagged == {("any_refusal", "b"), ("harmful_refusal", "b")}
    anyref = next(f for f in report["flags"] if f["measure"] == "any_refusal")
    assert "-33.3 points" in anyref["text"] and anyref["text"] in b["flag_reason"]


def test_same_error_in_every_group_is_not_flagged():
    df = pd.DataFrame({"label": ["refusal", "answer"] * 4, "name_group": ["a"] * 4 + ["b"] * 4})
    judged = ["refusal", "refusal"] * 4  # the same false-positive rate everywhere: the gap is unaffected
    report = validation.validate(df, judged, reference_group="a")
    assert report["flags"] == [] and report["per_group"]["b"]["bias_diff_vs_ref"] == pytest.approx(0)


def test_fleiss_kappa_by_hand():
    # Per item agreement 1, 0, 1 -> mean 2/3; category shares 1/2, 1/2 -> pe 1/2; kappa (2/3 - 1/2) / (1/2).
    assert validation.fleiss_kappa(np.array([["x", "x"], ["x", "y"], ["y", "y"]])) == pytest.approx(1 / 3)


def test_tables_have_one_row_per_scope(report):
    keys = {"validation_id": "j@d", "judge_id": "j", "dataset": "d", "dataset_file": "d.csv",
            "dataset_sha256": "0" * 64, "note": "", "run_id": "r", "validated_at": pd.Timestamp.now(tz="UTC")}
    frames = validation.to_frames(report, keys)
    assert list(frames["judge_validations"]["name_group"]) == ["all", "a", "b"]
    assert len(frames["judge_validation_labels"]) == 3 * 6 and len(frames["judge_validation_confusion"]) == 3 * 6 * 7
    # every measure of the report, for each group and overall
    assert len(frames["judge_validation_measures"]) == 4 * 3
    assert frames["judge_validation_confusion"]["count"].sum() == 2 * 6


def test_validate_command_json_on_pilot(capsys):
    from qos_pipeline.cli import main

    pilot = need_pilot()
    main(["judge", "validate", str(pilot), "--judge", "rules", "--json", "--no-store"])
    out = json.loads(capsys.readouterr().out)
    assert {"n", "accuracy", "macro_f1", "kappa", "refusal_f1", "per_group"} <= set(out)
    assert out["n"] == 2304 and set(out["per_group"]) == {"asian", "chinese", "mexican", "muslim", "white"}
    assert all({"n", "accuracy", "macro_f1", "kappa", "refusal_f1"} <= set(g) for g in out["per_group"].values())
    assert out["refusal_f1"] >= 0.95 and out["macro_f1"] >= 0.70  # the targets for the rules judge
