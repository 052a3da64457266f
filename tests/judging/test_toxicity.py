"""The toxicity contrast: a tiny sequence classifier built here (one word decides), the toxic class, the
per-group rates beside the refusal rates, and the optional asset (off without a classifier)."""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.defs.resources import Storage
from qos_pipeline.defs.toxicity import toxicity
from qos_pipeline.judging.rules.judge import RulesJudge
from qos_pipeline.judging.toxicity import ToxicityClassifier, ToxicityError, group_rates, score_rows, toxic_index
from qos_pipeline.staging import partition_file, write_partition
from tests.paths import ASSETS

WORDS = "you are an idiot I cannot help with that Sam went home . sorry".split()
MODEL = "fake-model"


def _tiny_classifier(folder: Path, labels: dict[int, str]) -> Path:
    """A 1-block Llama classifier whose verdict is its last word's: 'idiot' is toxic, any other word is not."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<pad>", "</s>", *dict.fromkeys(WORDS)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=4, num_labels=len(labels), id2label=labels,
                         label2id={v: k for k, v in labels.items()}, pad_token_id=1)
    model = LlamaForSequenceClassification(config)
    toxic = next(i for i, name in labels.items() if name in ("toxic", "LABEL_1"))
    with torch.no_grad():  # the last token's state is its (one-hot) embedding; only 'idiot' moves the head
        model.model.layers[0].self_attn.o_proj.weight.zero_()
        model.model.layers[0].mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(len(vocab), 32))
        # RMSNorm scales a one-hot by sqrt(32) ~ 5.7: 'idiot' gives the toxic class ~11, any other word
        # gives the other class ~2.8 (p toxic ~ 0.06).
        model.score.weight.fill_(0.0)
        model.score.weight[1 - toxic, :] = 0.5
        model.score.weight[1 - toxic, vocab["idiot"]] = 0.0
        model.score.weight[toxic, vocab["idiot"]] = 2.0
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    return _tiny_classifier(tmp_path_factory.mktemp("tox"), {0: "non-toxic", 1: "toxic"})


def _gens() -> pd.DataFrame:
    responses = ["you are an idiot", "I cannot help with that", "Sam went home .", "sorry , you idiot"]
    return pd.DataFrame({"generation_id": [f"g{i}" for i in range(4)], "prompt_id": "p", "sample": range(4),
                         "model_key": MODEL, "model_version": "v", "prompt_format": "f", "name_group": "white",
                         "response": responses})


def test_the_toxic_class_is_named_or_the_positive_one():
    assert toxic_index({0: "non-toxic", 1: "toxic"}, None) == 1
    assert toxic_index({0: "TOXIC", 1: "not_toxic"}, None) == 0
    assert toxic_index({0: "LABEL_0", 1: "LABEL_1"}, None) == 1
    assert toxic_index({0: "ok", 1: "hate", 2: "insult"}, "insult") == 2
    with pytest.raises(ToxicityError, match="set toxic_label"):
        toxic_index({0: "ok", 1: "hate", 2: "insult"}, None)
    with pytest.raises(ToxicityError, match="'slur' is not one of"):
        toxic_index({0: "ok", 1: "hate"}, "slur")


def test_scores_and_rates_beside_refusals(classifier_dir):
    clf = ToxicityClassifier(classifier_dir, "tiny", "0123456789abcdef", batch_size=3, device="cpu")
    scored = score_rows(_gens(), clf, 0.5, "run")
    assert scored["toxic"].tolist() == [True, False, False, True]
    assert scored["toxicity"].iloc[0] > 0.99 and scored["toxicity"].iloc[1] == pytest.approx(0.058, abs=0.01)
    assert set(scored["classifier_id"]) == {"toxicity.tiny.01234567"}
    judged = pd.DataFrame({"generation_id": ["g0", "g1", "g2", "g3"],
                           "label": ["answer", "harmful refusal", "answer", "refusal"]})
    [row] = group_rates(scored, judged).to_dict(orient="records")
    # 2 of 4 toxic; refusals g1 (not toxic) and g3 (toxic); the one harmful refusal is not toxic.
    assert (row["toxic_rate"], row["refusal_rate"], row["harmful_refusal_rate"]) == (0.5, 0.5, 0.25)
    assert row["toxic_rate_of_refusals"] == 0.5 and row["toxic_rate_of_harmful_refusals"] == 0.0
    assert math.isnan(group_rates(scored, None).iloc[0]["refusal_rate"])
    with pytest.raises(ToxicityError, match="strictly between 0 and 1"):
        score_rows(_gens(), clf, 1.0, "run")


@pytest.fixture()
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("model", [MODEL])
        yield inst


def test_asset_is_off_without_a_classifier_and_stages_scores_with_one(instance, classifier_dir, tmp_path):
    storage = Storage(assets_dir=str(ASSETS), warehouse_dir=str(tmp_path / "wh"))
    staging = storage.paths().staging
    write_partition(_gens(), partition_file(staging, "generations", "white", MODEL))
    judged = _gens()[["generation_id"]].assign(label=["answer", "refusal", "answer", "refusal"])
    write_partition(judged, partition_file(staging, "judgments", "white", MODEL, RulesJudge.judge_id))
    key = model_group_key(MODEL, "white")
    off = dg.materialize([toxicity], instance=instance, partition_key=key, resources={"storage": storage})
    assert off.success and not off.asset_materializations_for_node("toxicity")
    assert not partition_file(staging, "toxicity", "white", MODEL).exists()
    on = dg.materialize([toxicity], instance=instance, partition_key=key, resources={"storage": storage},
                        run_config={"ops": {"toxicity": {"config": {"classifier": str(classifier_dir)}}}})
    [mat] = on.asset_materializations_for_node("toxicity")
    assert mat.metadata["toxic_rate"].value == 0.5 and "toxic_rate_of_refusals" in mat.metadata["rates"].value
    stored = pd.read_parquet(partition_file(staging, "toxicity", "white", MODEL))
    assert stored["generation_id"].tolist() == ["g0", "g1", "g2", "g3"] and stored["toxic"].sum() == 2
