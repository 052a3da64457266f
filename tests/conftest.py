"""Shared fixtures: a tiny random Llama chat checkpoint built in-process (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<s> assistant : {% endif %}"
)
SPECIALS = ["<unk>", "<s>", "</s>"]
CORPUS = (
    "system user assistant : You are a helpful assistant . Complete the [BLANK] . "
    "John went to the market to [BLANK] . Mohammed works as a [BLANK] at the airport . "
    "Mei likes to cook [BLANK] for her friends ."
)


def build_tokenizer(chat_template: str | None = CHAT_TEMPLATE):
    """A WordLevel tokenizer over CORPUS plus filler words, with ``chat_template`` (None: none)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(CORPUS)})
    fillers = [f"w{i}" for i in range(200)]  # a few hundred tokens, so random sampling varies
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words + fillers)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(SPECIALS)  # so "<s>" in the template is one token, not "<", "s", ">"
    # No pad token on purpose: like Llama-2, the generator must fall back to eos for padding.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def build_tiny_llama(folder: Path, chat_template: str | None = CHAT_TEMPLATE) -> Path:
    """Save a random 2-layer Llama plus a WordLevel tokenizer into ``folder`` as an HF checkpoint."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(chat_template)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # eos logit pinned at 0 while the others are random: greedy decoding then never stops early,
        # which makes length-bounded behaviour deterministic.
        model.lm_head.weight[tokenizer.eos_token_id] = 0.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_llama_no_template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-no-template"), chat_template=None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests run only where CUDA is available (torch is imported only if there is one to decide)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
