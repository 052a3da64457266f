"""The learned judge on a pretrained model's pooled hidden states (a tiny random Llama built in the test):
training, the embedding cache, saving without the weights, the judge id; and folds split by any column."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qos_pipeline.judging import learned
from qos_pipeline.judging.base import JudgeInput
from qos_pipeline.judging.representations import HiddenStates
from qos_pipeline.settings import Paths
from tests.paths import ASSETS

PROMPT = "John went to the market to [BLANK]"
# Words the tiny tokenizer knows (tests/conftest.py): each label has its own words, so the pooled states differ.
TEXTS = {"answer": ["market cook friends", "cook for her friends", "the market airport"],
         "refusal": ["w1 w2 w3 w4", "w2 w3 w4 w5", "w1 w3 w5 w7"],
         "failure": ["w150 w151 w152", "w151 w152 w153", "w150 w152 w154"]}


def _frame(kinds: int = 1) -> pd.DataFrame:
    rows = [{"prompt_text": PROMPT, "response": t, "label": label, "name": "John", "kind": f"k{i % kinds}"}
            for label, texts in TEXTS.items() for i, t in enumerate(texts * 2)]
    return pd.DataFrame(rows)


def test_lm_features_learn_cache_and_save_without_weights(tiny_llama_dir, tmp_path, monkeypatch):
    paths = Paths(ASSETS, tmp_path / "wh", tmp_path / "cache")
    df = _frame()
    model = learned.fit(df, f"lm:{tiny_llama_dir}", paths)
    judge = learned.LearnedJudge(model, "lm", learned.data_hash(df))
    items = [JudgeInput(PROMPT, texts[0], "John") for texts in TEXTS.values()]
    assert [j.label for j in judge.judge(items)] == list(TEXTS)  # it separates what it was trained on
    assert all(abs(sum(j.scores.values()) - 1) < 1e-9 for j in judge.judge(items))
    assert list((paths.warehouse / "cache" / "embeddings").glob("*.npz"))  # vectors cached per text

    saved = learned.save(df, model, "lm", tmp_path / "judges", "toy.csv")
    meta = json.loads(saved.read_text())
    assert meta["features"].startswith("lm:") and meta["features"].endswith("-l2-t64")  # 2 blocks: layer 2
    loaded = learned.load(str(saved), paths.warehouse)
    assert loaded.judge_id == meta["judge_id"] != learned.LearnedJudge(learned.fit(df), "lm", "x").judge_id
    states = loaded.model.named_steps["states"]
    assert getattr(states, "_model", None) is None  # stored without the model
    monkeypatch.setattr(HiddenStates, "_load", lambda self: pytest.fail("cached texts need no model"))
    assert [j.label for j in loaded.judge(items)] == list(TEXTS)


def test_unknown_features_are_named():
    with pytest.raises(ValueError, match="features 'bert' unknown; use tfidf or lm"):
        learned.make_model("bert", Paths.resolve(ASSETS))


def test_folds_can_be_split_by_any_column(monkeypatch):
    df = _frame(kinds=3)
    seen, judge = [], learned.LearnedJudge.judge

    def spy(self, items):
        seen.append({df.loc[(df["response"] == i.response), "kind"].iloc[0] for i in items})
        return judge(self, items)

    monkeypatch.setattr(learned.LearnedJudge, "judge", spy)
    pred = learned.cross_validate(df, folds=3, by="kind")
    assert pred.notna().all() and sorted(map(sorted, seen)) == [["k0"], ["k1"], ["k2"]]
    with pytest.raises(ValueError, match="4 folds need at least 4 distinct kind values"):
        learned.cross_validate(df, folds=4, by="kind")
