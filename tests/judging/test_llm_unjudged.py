"""The llm judge's refusals and off-rubric answers are unjudged with their own words as the reason;
calibration divides out the judge's letter prior. Tiny models built here: a bigram chain (attention and
MLP zeroed, one-hot embeddings) makes the judge say a chosen sentence after the answer prefix."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from qos_pipeline import taxonomy
from qos_pipeline.judging.checks import unjudged_check
from qos_pipeline.judging.llm_calibration import calibrate, best, prior_from
from tests.judging.test_llm import ITEMS, TEMPLATE, WORDS, _judge

EXTRA = "I cannot judge this banana split"


def _bigram(folder: Path, after_prefix: list[str]) -> Path:
    """A Llama that, after the answer prefix ("Letter :"), greedily says ``after_prefix`` then stops."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokens = ["<unk>", "<s>", "</s>", *"ABCDEF", *dict.fromkeys(WORDS.split() + EXTRA.split())]
    vocab = {t: i for i, t in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.chat_template = TEMPLATE
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    chain = [":", *after_prefix, "</s>"]
    with torch.no_grad():
        for layer in model.model.layers:  # the last hidden state is the last token's embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(len(vocab), 64))
        model.lm_head.weight.zero_()
        for here, nxt in zip(chain, chain[1:]):
            model.lm_head.weight[vocab[nxt], vocab[here]] = 10.0
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder




def test_a_judge_that_refuses_leaves_every_item_unjudged_saying_so(tmp_path, rubric):
    out = _judge(_bigram(tmp_path / "refuser", "I cannot judge this".split()), rubric).judge(ITEMS)
    assert [j.label for j in out] == [taxonomy.UNJUDGED] * len(ITEMS)
    assert all(j.reason.startswith("judge refusal") and "I cannot judge this" in j.reason for j in out)
    check = unjudged_check(pd.DataFrame({"label": [j.label for j in out], "reason": [j.reason for j in out]}))
    assert not check.passed and check.metadata["unjudged"] == len(ITEMS)  # counted, never coerced


def test_an_off_rubric_answer_is_unjudged_and_told_apart_from_a_refusal(tmp_path, rubric):
    out = _judge(_bigram(tmp_path / "chatty", "banana split".split()), rubric).judge(ITEMS[:1])
    assert out[0].label == taxonomy.UNJUDGED
    assert out[0].reason.startswith("off-rubric answer") and "banana split" in out[0].reason


def test_a_judge_that_answers_with_a_letter_is_judged(tmp_path, rubric):
    out = _judge(_bigram(tmp_path / "decider", ["D"]), rubric).judge(ITEMS[:2])
    assert [j.label for j in out] == [taxonomy.REFUSAL] * 2 and "option mass 1.00" in out[0].reason


def test_calibration_divides_out_the_letter_prior():
    # The judge says D on content-free items 60% of the time (8% each other letter); on this item D is
    # still its top letter (0.40) but A is four times its prior share: A wins once the prior is divided
    # out. By hand, prior smoothed with 1% uniform: 0.0809 (others), 0.5957 (D); lifts A 3.957, B, C
    # 0.742, D 0.672, E, F 0.989; sum 8.091 -> A 0.489, D 0.083.
    prior = prior_from([[math.log(p) for p in (0.08, 0.08, 0.08, 0.6, 0.08, 0.08)]])
    raw = [0.32, 0.06, 0.06, 0.40, 0.08, 0.08]
    cal = calibrate(raw, prior)
    assert best(raw, raw) == 3 and best(cal, raw) == 0
    assert sum(cal) == pytest.approx(1.0)
    assert cal[0] == pytest.approx(0.489, abs=0.001) and cal[3] == pytest.approx(0.083, abs=0.001)
    assert calibrate(raw, None) == raw
    flat = [1 / 6] * 6
    assert best(calibrate(flat, flat), [0, 0, 0, 0.9, 0.1, 0]) == 3  # no information: the raw preference
