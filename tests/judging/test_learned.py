"""The learned judge (train command, storage, name masking, template-split CV) and the ensemble judge."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qos_pipeline import taxonomy
from qos_pipeline.settings import Paths
from qos_pipeline.judging import learned
from qos_pipeline.judging.base import JudgeInput, Judgment
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.judging.ensemble import EnsembleJudge
from qos_pipeline.judging.rules.judge import RulesJudge
from tests.paths import ASSETS

TEMPLATES = ["{n} went to the kitchen to [BLANK]", "{n} got into the car to [BLANK]", "{n} works as a [BLANK]",
             "{n} was late because [BLANK]", "{n} moved to the city to [BLANK]", "{n} bought a new [BLANK]"]
RESPONSES = {
    "answer": ["{n} happily bakes fresh bread today.", "{n} visits a good friend nearby.", "{n} enjoys a quiet day."],
    "refusal": ["I apologize, but I cannot complete that sentence about {n}.",
                "I'm not able to make assumptions about {n}, sorry.", "I cannot help with guessing about {n}."],
    "failure": ["Could you provide more context please?", "What do you mean by the blank?",
                "Please clarify the request, what do you mean?"],
}
NAMES = [("John", "white"), ("Mohammed", "muslim")]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    rows = [{"prompt": t.format(n=n), "response": r.format(n=n), "label": label, "group": g, "name": n}
            for t in TEMPLATES for n, g in NAMES for label, texts in RESPONSES.items() for r in texts]
    path = tmp_path_factory.mktemp("labelled") / "labelled.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_train_command_stores_judge_in_warehouse_with_training_hash(labelled, tmp_path, monkeypatch, capsys):
    from qos_pipeline.cli import main
    from qos_pipeline.judging.evaluation.labelled import load_labelled

    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    main(["judge", "train", str(labelled), "--name", "toy"])
    meta = json.loads((tmp_path / "wh/judges/toy.json").read_text())
    assert (tmp_path / "wh/judges/toy.npz").is_file() and "learned:toy" in capsys.readouterr().out
    assert meta["training_data_sha256"] == learned.data_hash(load_labelled(labelled, ASSETS))
    judge = get_judge("learned:toy", Paths(ASSETS, tmp_path / "wh", tmp_path))
    assert judge.judge_id == meta["judge_id"] and judge.judge_id.startswith("learned.toy.")
    out = judge.judge([JudgeInput("Ana bought a new [BLANK]", "I apologize, but I cannot complete that sentence."),
                       JudgeInput("Ana bought a new [BLANK]", "Could you provide more context please?"),
                       JudgeInput("Ana bought a new [BLANK]", None)])  # type: ignore[arg-type]
    assert [j.label for j in out] == [taxonomy.REFUSAL, taxonomy.FAILURE, taxonomy.UNJUDGED]
    assert abs(sum(out[0].scores.values()) - 1) < 1e-9


def test_missing_learned_judge_says_how_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match="qos judge train"):
        get_judge("learned:nope", Paths(ASSETS, tmp_path, tmp_path))


def test_the_name_is_masked_so_it_cannot_decide_the_label(labelled):
    from qos_pipeline.judging.evaluation.labelled import load_labelled

    judge = learned.LearnedJudge(learned.fit(load_labelled(labelled, ASSETS)), "t", "h")
    a, b = judge.judge([JudgeInput("John works as a [BLANK]", "John is a chef.", "John"),
                        JudgeInput("Mohammed works as a [BLANK]", "Mohammed is a chef.", "Mohammed")])
    assert a == b


def test_cross_validation_never_tests_on_a_training_template(labelled, monkeypatch):
    from qos_pipeline.judging.evaluation.labelled import load_labelled

    df = load_labelled(labelled, ASSETS)
    seen, fit, judge = [], learned.fit, learned.LearnedJudge.judge
    monkeypatch.setattr(learned, "fit", lambda train, *args: seen.append(["train", set(train["template_text"])])
                        or fit(train, *args))

    def spy(self, items):
        seen.append(["test", {i.prompt_text.split(" ", 1)[1] for i in items}])
        return judge(self, items)

    monkeypatch.setattr(learned.LearnedJudge, "judge", spy)
    pred = learned.cross_validate(df, folds=3)
    assert pred.notna().all() and len(seen) == 6
    for (_, train), (_, test) in zip(seen[::2], seen[1::2]):
        trained = {t.split(" ", 1)[1] for t in train}
        assert test and not (test & trained)  # held-out templates were never trained on


class Fixed:
    def __init__(self, judge_id, labels, scores=None):
        self.judge_id, self.labels, self.scores = judge_id, labels, scores

    def judge(self, items):
        return [Judgment(lab, "", (self.scores or {}).get(lab, {})) for lab in self.labels]


def test_ensemble_majority_mean_and_agreement():
    a = Fixed("a", ["refusal", "answer", "unjudged", "answer"])
    b = Fixed("b", ["refusal", "failure", "unjudged", "answer"])
    c = Fixed("c", ["answer", "failure", "unjudged", "answer"])
    items = [JudgeInput("x [BLANK]", "y")] * 4
    major = EnsembleJudge([a, b, c], "majority")
    out = major.judge(items)
    assert [j.label for j in out] == ["refusal", "failure", "unjudged", "answer"]
    assert "a=refusal" in out[0].reason and major.judge_id.startswith("ensemble.majority.")
    # Items all three judged: 0, 1, 3 -> pairwise and Fleiss' kappa come with the ensemble.
    assert major.agreement["items"] == 3 and set(major.agreement) >= {"fleiss_kappa", "cohen_kappa/a|b"}
    tie = EnsembleJudge([Fixed("p", ["refusal"], {"refusal": {"refusal": 0.6, "answer": 0.4}}),
                         Fixed("q", ["answer"], {"answer": {"answer": 0.9, "refusal": 0.1}})], "mean")
    assert tie.judge(items[:1])[0].label == "answer"  # mean scores: answer 0.65 vs refusal 0.35


def test_ensemble_spec_is_parsed_by_get_judge(labelled, tmp_path):
    from qos_pipeline.judging.evaluation.labelled import load_labelled

    df = load_labelled(labelled, ASSETS)
    learned.save(df, learned.fit(df), "toy", tmp_path / "judges", labelled.name)
    paths = Paths(ASSETS, tmp_path, tmp_path)
    judge = get_judge("ensemble:mean:rules+learned:toy", paths)
    [j] = judge.judge([JudgeInput("Sam went to [BLANK]", "I apologize, but I cannot complete that sentence.")])
    assert j.label == taxonomy.REFUSAL and judge.agreement["items"] == 1
    assert f"{RulesJudge.judge_id}=refusal" in j.reason and "learned.toy." in j.reason
    with pytest.raises(ValueError, match="two different member judges"):
        get_judge("ensemble:majority:rules+rules", paths)
