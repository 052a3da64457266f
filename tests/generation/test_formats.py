"""Prompt-format conditions: the formats file, the exact prompt string of each condition, and the model
errors around chat templates (tiny tokenizer and tiny Llama built in-process)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from qos_pipeline.generation.interface import GenerationRequest
from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.sampling import SamplingConfig
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.registry import resolve_model
from qos_pipeline.generation.formats import PromptFormatError, load_formats, select_formats
from tests.conftest import build_tokenizer
from tests.paths import ASSETS, need_pilot

USER = "John went to the market to [BLANK] ."
PAPER = "You are a helpful assistant. Complete the [BLANK]."
LLAMA2_DEFAULT_START = "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible"
# A Llama-2-style chat template (the shape of meta-llama/Llama-2-*-chat-hf's): system folded into the first
# user turn between <<SYS>> markers.
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% endif %}{% endfor %}"
)


@pytest.fixture(scope="module")
def formats():
    return load_formats(ASSETS)[0]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_formats_file_lists_the_conditions(formats) -> None:
    assert set(formats) == {"chat:paper-system", "chat:no-system", "chat:llama2-default-system",
                            "legacy:llama2-inst", "raw"}
    assert load_formats(ASSETS)[1] == "chat:paper-system"
    assert formats["chat:paper-system"].system == PAPER
    assert len({f.fingerprint() for f in formats.values()}) == len(formats)


@pytest.mark.parametrize("fid,expected", [
    ("chat:paper-system", f"<s> system : {PAPER} </s> <s> user : {USER} </s> <s> assistant : "),
    ("chat:no-system", f"<s> user : {USER} </s> <s> assistant : "),
    ("legacy:llama2-inst", f"<s>[INST] <<SYS>>\n{PAPER}\n<</SYS>>[INST]{USER}[/INST]"),
    ("raw", USER),
])
def test_each_condition_renders_the_expected_string(formats, tokenizer, fid, expected) -> None:
    assert formats[fid].render(tokenizer, USER, "tiny") == expected


def test_llama2_default_system_prompt_is_meta_text(formats, tokenizer) -> None:
    text = formats["chat:llama2-default-system"].render(tokenizer, USER, "tiny")
    system = formats["chat:llama2-default-system"].system
    assert system.startswith(LLAMA2_DEFAULT_START) and system.endswith("please don't share false information.")
    assert "socially unbiased and positive in nature.\n\nIf a question" in system
    assert text == f"<s> system : {system} </s> <s> user : {USER} </s> <s> assistant : "


def test_paper_condition_on_a_llama2_tokenizer_is_metas_reference_string(formats) -> None:
    # Through a Llama-2 chat template, the paper's condition is the reference code's prompt string.
    llama_tok = build_tokenizer(LLAMA2_TEMPLATE)
    assert formats["chat:paper-system"].render(llama_tok, USER, "llama") == \
        f"<s>[INST] <<SYS>>\n{PAPER}\n<</SYS>>\n\n{USER} [/INST]"


def test_legacy_condition_is_the_pilots_exact_prompt_string(formats, tokenizer) -> None:
    # The pilot's recorded prompts (column new_prompt) are hand-built strings with a second [INST] and no
    # spaces around the sentence; the legacy condition must reproduce them byte for byte.
    pilot = pd.read_csv(need_pilot(), usecols=["prompt_sentence", "new_prompt"])
    rendered = [formats["legacy:llama2-inst"].render(tokenizer, s, "llama") for s in pilot["prompt_sentence"]]
    assert rendered == pilot["new_prompt"].tolist()


def test_user_text_with_braces_is_kept_literally(formats, tokenizer) -> None:
    assert formats["raw"].render(tokenizer, "a {user} {system} b", "tiny") == "a {user} {system} b"


def test_selection_and_unknown_ids() -> None:
    assert [f.id for f in select_formats(ASSETS, None)] == ["chat:paper-system"]
    assert [f.id for f in select_formats(ASSETS, None, model_default="raw")] == ["raw"]
    assert [f.id for f in select_formats(ASSETS, ["raw", "chat:no-system", "raw"])] == ["raw", "chat:no-system"]
    with pytest.raises(PromptFormatError, match="unknown prompt format.*'chat:nope'.*chat:paper-system"):
        select_formats(ASSETS, ["chat:nope"])


def test_bad_formats_file(tmp_path: Path) -> None:
    (tmp_path / "prompt_formats.yaml").write_text("formats:\n  x:\n    kind: text\n    template: no user here\n")
    with pytest.raises(PromptFormatError, match="text format 'x' needs a `template:` containing {user}"):
        load_formats(tmp_path)
    with pytest.raises(PromptFormatError, match="missing"):
        load_formats(tmp_path / "nowhere")


def test_a_misspelt_key_names_the_file_the_condition_and_the_field(tmp_path: Path) -> None:
    # `sytem:` for `system:` used to be ignored: the condition ran without its system prompt
    (tmp_path / "prompt_formats.yaml").write_text("formats:\n  chat:mine:\n    kind: chat\n    sytem: Be brief.\n")
    with pytest.raises(PromptFormatError) as failed:
        load_formats(tmp_path)
    assert str(failed.value) == (f"{tmp_path / 'prompt_formats.yaml'}: entry 'chat:mine', field 'sytem': "
                                 "unknown field (misspelt?)")


def test_chat_condition_without_template_names_model_and_condition(tiny_llama_no_template_dir, tmp_path,
                                                                   formats) -> None:
    spec = resolve_model(str(tiny_llama_no_template_dir), ASSETS, tmp_path)
    generator = HFGenerator(spec)
    greedy = SamplingConfig(do_sample=False, max_new_tokens=4)
    request = GenerationRequest("p0", 0, USER, 1, formats["chat:no-system"])
    with pytest.raises(ModelError, match=f"model '{spec.key}' has no chat template.*'chat:no-system'.*'raw'"):
        generator.generate([request], greedy)
    # a base model without a template still runs the text conditions
    raw = generator.generate([GenerationRequest("p0", 0, USER, 1, formats["raw"])], greedy)
    legacy = generator.generate([GenerationRequest("p0", 0, USER, 1, formats["legacy:llama2-inst"])], greedy)
    assert raw[0].n_new_tokens == 4 and raw != legacy
