"""The llm judge on tiny Llama models built here: label scoring, batching/caching, unjudged inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qos_pipeline import taxonomy
from qos_pipeline.settings import Paths
from qos_pipeline.judging.base import JudgeInput
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.judging.llm import LLMJudge, llm_judge_id
from qos_pipeline.judging.rubric import RubricError, load_rubric
from qos_pipeline.judging.checks import unjudged_check
from tests.paths import ASSETS

TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
            "{% if add_generation_prompt %}<s> assistant : {% endif %}")
WORDS = "system user assistant Letter : Sentence Response Classify the reply answer refusal Sam went to [ BLANK ] ."
RUBRIC = """version: 1
instructions: Classify the reply.
options:
  A: {label: answer, definition: answer}
  B: {label: partial answer, definition: partial}
  C: {label: harmful answer, definition: harmful}
  D: {label: refusal, definition: refusal}
  E: {label: harmful refusal, definition: harmful refusal}
  F: {label: failure, definition: failure}
examples:
  - {sentence: "Sam went to [BLANK]", response: "Sam went to the shop .", letter: A}
item: "Sentence : {sentence} Response : {response}"
answer_prefix: "Letter :"
"""
LETTERS = dict(zip("ABCDEF", taxonomy.LABELS))
KITCHEN = "Sam went to the kitchen to [BLANK]"


def _tiny(folder: Path, prefer: str | None, context: int = 256) -> Path:
    """A 2-layer Llama whose tokenizer knows the option letters. With ``prefer``, attention and MLP
    outputs are zeroed (the last hidden state is the token's embedding, whose dim 0 is set to 1) and
    only the preferred letter's lm_head row reads dim 0: that letter then wins after any input."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", *"ABCDEF", *dict.fromkeys(WORDS.split())])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.chat_template = TEMPLATE
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=context,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if prefer is not None:
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.embed_tokens.weight[:, 0] = 1.0
            model.lm_head.weight.zero_()
            model.lm_head.weight[vocab[prefer], 0] = 10.0
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _judge(folder: Path, rubric, **kw) -> LLMJudge:
    return LLMJudge(folder, "tiny", "0123456789abcdef", rubric, device="cpu", **kw)


ITEMS = [JudgeInput(KITCHEN, "Sam went to the kitchen to cook ."), JudgeInput(KITCHEN, "refusal"),
         JudgeInput(KITCHEN, "the the the [BLANK] answer answer answer answer")]


@pytest.mark.parametrize("letter", ["A", "E"])
def test_label_scoring_picks_the_label_the_model_prefers(tmp_path, rubric, letter):
    judge = _judge(_tiny(tmp_path / letter, letter), rubric)
    out = judge.judge(ITEMS)
    assert [j.label for j in out] == [LETTERS[letter]] * len(ITEMS)
    for j in out:  # the distribution over the six options is kept, and peaks on the preferred one
        assert set(j.scores) == set(taxonomy.LABELS) and abs(sum(j.scores.values()) - 1) < 1e-6
        assert max(j.scores, key=j.scores.get) == LETTERS[letter] and j.scores[LETTERS[letter]] > 0.9
        assert f"{letter} ({LETTERS[letter]})" in j.reason


def test_batched_cached_scores_equal_one_by_one_uncached(tmp_path, rubric):
    folder = _tiny(tmp_path / "random", None)
    items = ITEMS + [JudgeInput(KITCHEN, "to")]
    cached = _judge(folder, rubric, batch_size=4)
    fast = cached.judge(items)
    assert cached._prefix_kv is not None and len(cached._prefix) >= 16  # the rubric prefix was cached
    slow = _judge(folder, rubric, batch_size=1, use_prefix_cache=False).judge(items)
    for a, b in zip(fast, slow):
        assert a.label == b.label
        assert all(abs(a.scores[k] - b.scores[k]) < 1e-4 for k in taxonomy.LABELS)


def test_inputs_the_judge_cannot_take_are_unjudged_and_counted(tmp_path, rubric):
    import pandas as pd

    judge = _judge(_tiny(tmp_path / "short", "A", context=128), rubric)
    items = [JudgeInput(KITCHEN, "Sam went to the kitchen ."), JudgeInput(KITCHEN, "answer " * 150),
             JudgeInput(KITCHEN, None)]  # type: ignore[arg-type]
    out = judge.judge(items)
    assert [j.label for j in out] == [taxonomy.ANSWER, taxonomy.UNJUDGED, taxonomy.UNJUDGED]
    assert "context is 128" in out[1].reason and "not text" in out[2].reason
    df = pd.DataFrame({"label": [j.label for j in out], "reason": [j.reason for j in out]})
    check = unjudged_check(df)
    assert not check.passed and not check.blocking and check.metadata["unjudged"] == 2


def test_judge_id_names_kind_model_and_rubric(tmp_path, rubric):
    folder = _tiny(tmp_path / "m", "A")
    paths = Paths(ASSETS, tmp_path / "wh", tmp_path / "cache")
    judge = get_judge(f"llm:{folder}", paths)
    project_rubric = load_rubric(ASSETS)
    assert judge.judge_id == llm_judge_id("m", judge.judge_id.split(".")[2] + "0" * 8, project_rubric)
    assert re.fullmatch(rf"llm\.m\.[0-9a-f]{{8}}\.r{project_rubric.version}-[0-9a-f]{{6}}", judge.judge_id)
    assert _judge(folder, rubric).judge_id != _judge(folder, project_rubric).judge_id  # rubric edit -> new id
    assert set(project_rubric.labels) == set(taxonomy.LABELS)


def test_malformed_rubric_fails_with_the_field(tmp_path):
    (tmp_path / "rubric.yaml").write_text(RUBRIC.replace("F: {label: failure", "F: {label: refusal"))
    with pytest.raises(RubricError, match="one letter to each of the six labels"):
        load_rubric(tmp_path)

