"""A judge id changes whenever what decides a label can change: the rules' source, the learned judge's
featurizing code and training data, the LLM judge's model, rubric and scoring code, an ensemble's members."""

from __future__ import annotations

import dataclasses
import importlib.util
import re

import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.judging import ensemble, learned, llm, representations
from qos_pipeline.judging.rubric import load_rubric
from qos_pipeline.judging.rules import families, fills, judge as rules_judge, vocabulary
from qos_pipeline.judging.rules.judge import RulesJudge
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.provenance import code_digest
from tests.paths import ASSETS


def _module_from(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rules_judge_id_hashes_the_rules_source(tmp_path):
    assert re.fullmatch(r"rules\.[0-9a-f]{8}", RulesJudge.judge_id)
    assert RulesJudge.judge_id == "rules." + code_digest(vocabulary, families, fills, rules_judge, taxonomy)
    assert get_judge("rules").judge_id == get_judge(RulesJudge.judge_id).judge_id == RulesJudge.judge_id
    # an edited rule is new source, hence a new digest, hence a new id (labels are never reused across it)
    source = vocabulary.__file__
    edited = tmp_path / "vocabulary_edited.py"
    edited.write_text(open(source).read().replace("DECLINE_WITHIN, LECTURE_WITHIN = 300, 400",
                                                  "DECLINE_WITHIN, LECTURE_WITHIN = 250, 400"))
    same = tmp_path / "vocabulary_same.py"
    same.write_text(open(source).read())
    assert code_digest(_module_from(same, "v_same"), families, fills, rules_judge, taxonomy) == RulesJudge.judge_id[6:]
    assert code_digest(_module_from(edited, "v_edit"), families, fills, rules_judge, taxonomy) != RulesJudge.judge_id[6:]


def test_learned_judge_id_covers_training_data_and_featurizing_code(monkeypatch):
    a = learned.LearnedJudge(None, "toy", "data-a")
    assert a.judge_id.startswith("learned.toy.") and a.judge_id != learned.LearnedJudge(None, "toy", "data-b").judge_id
    assert learned.FEATURES == code_digest(learned, representations)  # the pooled-LM features count too
    monkeypatch.setattr(learned, "FEATURES", "edited")
    assert learned.LearnedJudge(None, "toy", "data-a").judge_id != a.judge_id


def test_llm_judge_id_covers_model_rubric_and_scoring_code(tmp_path, monkeypatch):
    rubric = load_rubric(ASSETS)
    base = llm.llm_judge_id("m", "0123456789abcdef", rubric)
    assert base != llm.llm_judge_id("m", "fedcba9876543210", rubric)
    assert base != llm.llm_judge_id("m", "0123456789abcdef", dataclasses.replace(rubric, digest="0" * 64))
    monkeypatch.setattr(llm, "SCORING_CODE", "edited")
    assert llm.llm_judge_id("m", "0123456789abcdef", rubric) != base
    assert len(base) <= 64


def test_ensemble_id_changes_with_its_members():
    class Fake:
        def __init__(self, judge_id):
            self.judge_id = judge_id

    one = ensemble.EnsembleJudge([Fake("a"), Fake("b")]).judge_id
    assert one != ensemble.EnsembleJudge([Fake("a"), Fake("c")]).judge_id
    assert one != ensemble.EnsembleJudge([Fake("a"), Fake("b")], "mean").judge_id
    assert pd.Series([one]).str.fullmatch(r"ensemble\.majority\.[0-9a-f]{8}").all()
