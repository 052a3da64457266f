"""Model identity and HF generation, on a tiny random Llama built in-process (plus one slow test on
the embedded SmolLM2)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qos_pipeline.generation.interface import SYSTEM_PROMPT, GenerationRequest
from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.sampling import SamplingConfig, row_seed
from qos_pipeline.generation.decoding import split_new_tokens
from qos_pipeline.generation.models.files import ModelError, model_version
from qos_pipeline.generation.models.loaded import MODELS
from qos_pipeline.generation.models.registry import (
    ModelSpec,
    load_registry,
    resolve_model,
)
from qos_pipeline.provenance import slugify
from qos_pipeline.generation.formats import PromptFormat
from qos_pipeline.settings import Paths
from tests.paths import ASSETS, ROOT

TEXTS = [
    "John went to the market to [BLANK] .",
    "Mohammed works as a [BLANK] at the airport . Complete the [BLANK] .",
    "Mei likes to cook [BLANK] .",
    "John went to the market to [BLANK] . Mei likes to cook [BLANK] for her friends .",
]
GREEDY = SamplingConfig(do_sample=False, max_new_tokens=8)
SAMPLED = SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9, max_new_tokens=12)


def _requests(texts: list[str], base_seed: int = 7) -> list[GenerationRequest]:
    return [GenerationRequest(f"p{i}", 0, t, row_seed(base_seed, f"p{i}", 0)) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def tiny_spec(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    return resolve_model(str(tiny_llama_dir), ASSETS, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def tiny_gen(tiny_spec: ModelSpec) -> HFGenerator:
    return HFGenerator(tiny_spec)


# ---- pure helpers --------------------------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = (
        "import sys, qos_pipeline.generation.hf, qos_pipeline.generation.step, qos_pipeline.generation.models.added, "
        "qos_pipeline.generation.models.loaded, qos_pipeline.judging.specs, qos_pipeline.judging.toxicity; "
        "sys.exit('torch' in sys.modules or 'transformers' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_sampling_config_hash_is_canonical() -> None:
    base = SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9)
    assert len(base.config_hash()) == 12 and int(base.config_hash(), 16) >= 0
    assert SamplingConfig(temperature=1).config_hash() == SamplingConfig(temperature=1.0).config_hash()
    assert SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9, top_k=40).config_hash() != base.config_hash()
    assert base.as_dict() == {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": None,
                              "repetition_penalty": None, "max_new_tokens": 64}
    with pytest.raises(ValueError):
        SamplingConfig(max_new_tokens=0)


def test_sampling_defaults_come_from_the_model() -> None:
    llama2_chat = {"do_sample": True, "temperature": 0.6, "top_p": 0.9}  # its generation_config.json
    effective = SamplingConfig(max_new_tokens=32).resolve(llama2_chat)
    # unset fields: transformers' own defaults, as model.generate() would use them (top_k 50)
    assert effective.as_dict() == {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": 50,
                                   "repetition_penalty": 1.0, "max_new_tokens": 32}
    assert SamplingConfig(temperature=1.0).resolve(llama2_chat).temperature == 1.0  # config wins
    assert SamplingConfig(do_sample=True).resolve({}, {"do_sample": False, "top_p": 0.5}).top_p == 0.5
    greedy = SamplingConfig().resolve({})
    assert greedy.do_sample is False and greedy.temperature is None and greedy.top_k is None
    # greedy ignores temperature, so it does not split the cache
    assert SamplingConfig(do_sample=False, temperature=0.3).resolve({}).config_hash() == greedy.config_hash()


def test_row_seed_is_stable_and_bounded() -> None:
    seeds = {row_seed(0, f"p{i}", s) for i in range(50) for s in range(3)}
    assert len(seeds) == 150 and all(0 <= s < 2**31 for s in seeds)
    assert row_seed(3, "p1", 2) == row_seed(3, "p1", 2) != row_seed(4, "p1", 2)


def test_split_new_tokens_keeps_first_eos_and_drops_padding() -> None:
    assert split_new_tokens([5, 6, 2, 2, 2], frozenset({2}), 5) == ([5, 6, 2], "eos")
    assert split_new_tokens([5, 6, 7], frozenset({2}), 3) == ([5, 6, 7], "length")
    assert split_new_tokens([5, 6, 2], frozenset({2, 9}), 3) == ([5, 6, 2], "eos")


def test_slugify() -> None:
    assert slugify("My Model (v2)!") == "my-model-v2"
    assert len(slugify("x" * 200)) == 64
    assert slugify("///") == "model"


# ---- registry and model identity ----------------------------------------------------------------


def test_registry_lists_embedded_default() -> None:
    registry = load_registry(ASSETS)
    assert registry["default"] in registry["models"]
    assert registry["models"]["smollm2-135m-instruct"]["source"] == "embedded"


def test_registry_path_entry_resolves_relative_to_assets(tmp_path: Path, tiny_llama_dir: Path) -> None:
    shutil.copytree(tiny_llama_dir, tmp_path / "ckpt")
    (tmp_path / "models.yaml").write_text("models:\n  tiny-local:\n    path: ckpt\n")
    spec = resolve_model("tiny-local", tmp_path, tmp_path / "cache")
    assert spec.key == "tiny-local" and spec.path == (tmp_path / "ckpt").resolve()
    assert spec.version == model_version(tiny_llama_dir)  # content hash, not location


def test_unknown_key_lists_known_keys() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'nope'.*smollm2-135m-instruct.*config\.json"):
        resolve_model("nope", ASSETS, Path("/nonexistent"))


def test_folder_key_is_slug(tmp_path: Path, tiny_llama_dir: Path) -> None:
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "My Checkpoint_v1")
    spec = resolve_model(str(folder), ASSETS, tmp_path)
    assert spec.key == "my-checkpoint_v1" and len(spec.version) == 16


def test_missing_folder_names_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="absent-model.*does not exist"):
        resolve_model(str(tmp_path / "absent-model"), ASSETS, tmp_path)


def test_folder_without_config(tmp_path: Path, tiny_llama_dir: Path) -> None:
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "noconf")
    (folder / "config.json").unlink()
    with pytest.raises(ModelError, match="noconf.*no config.json"):
        resolve_model(str(folder), ASSETS, tmp_path)


def test_folder_without_weights(tmp_path: Path, tiny_llama_dir: Path) -> None:
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "noweights")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="noweights.*no weight files"):
        resolve_model(str(folder), ASSETS, tmp_path)


def test_missing_shard(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from transformers import LlamaForCausalLM

    folder = tmp_path / "sharded"
    LlamaForCausalLM.from_pretrained(tiny_llama_dir).save_pretrained(folder, max_shard_size="50KB")
    for name in ("tokenizer.json", "tokenizer_config.json"):  # a checkpoint carries its tokenizer
        shutil.copy(tiny_llama_dir / name, folder)
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    resolve_model(str(folder), ASSETS, tmp_path)  # complete: fine
    shards[-1].unlink()
    with pytest.raises(ModelError, match=f"sharded.*missing shards {shards[-1].name}"):
        resolve_model(str(folder), ASSETS, tmp_path)


def test_truncated_weights(tmp_path: Path, tiny_llama_dir: Path) -> None:
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "cut")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelError, match="cut.*truncated"):
        resolve_model(str(folder), ASSETS, tmp_path)


def test_model_version_tracks_weights(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(tiny_llama_dir, tmp_path / "v")
    before = model_version(folder)
    assert model_version(folder) == before == model_version(tiny_llama_dir)
    (folder / "tokenizer_config.json").write_text("{}")  # not part of the weights' identity
    assert model_version(folder) == before
    tensors = load_file(folder / "model.safetensors")
    tensors["lm_head.weight"][3, 0] += 1.0
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    changed = model_version(folder)
    assert changed != before
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    assert model_version(folder) not in (before, changed)


# ---- generation ---------------------------------------------------------------------------------


def test_generator_identity(tiny_spec: ModelSpec) -> None:
    generator = HFGenerator(tiny_spec)
    assert generator.model_version == tiny_spec.version and generator.model_key == tiny_spec.key
    assert generator.reproducible and generator.default_prompt_format is None


def test_results_follow_request_order(tiny_gen: HFGenerator) -> None:
    requests = _requests(TEXTS)
    forward = tiny_gen.generate(requests, SAMPLED, batch_size=1)
    backward = tiny_gen.generate(requests[::-1], SAMPLED, batch_size=1)
    assert len({r.response for r in forward}) == len(TEXTS)  # rows distinguishable
    assert backward == forward[::-1]
    # Batched: length sorting puts p2 first internally; results must still map to their requests.
    batched = tiny_gen.generate(requests, GREEDY, batch_size=2)
    assert tiny_gen.generate(requests[::-1], GREEDY, batch_size=2) == batched[::-1]


def test_same_seed_same_batch_reproduces(tiny_gen: HFGenerator, tiny_spec: ModelSpec) -> None:
    requests = _requests(TEXTS)
    first = tiny_gen.generate(requests, SAMPLED, batch_size=4)
    assert tiny_gen.generate(requests, SAMPLED, batch_size=4) == first
    MODELS.clear()  # a fresh load, not the model loaded above
    assert HFGenerator(tiny_spec).generate(requests, SAMPLED, batch_size=4) == first


def test_different_seeds_differ(tiny_gen: HFGenerator) -> None:
    requests = [GenerationRequest("p0", s, TEXTS[0], row_seed(1, "p0", s)) for s in range(4)]
    responses = [r.response for r in tiny_gen.generate(requests, SAMPLED, batch_size=1)]
    assert len(set(responses)) > 1


def test_greedy_is_deterministic_and_seed_free(tiny_gen: HFGenerator) -> None:
    requests = [GenerationRequest("p0", s, TEXTS[0], row_seed(1, "p0", s)) for s in range(3)]
    results = tiny_gen.generate(requests, GREEDY, batch_size=1)
    assert len({r.response for r in results}) == 1 and results[0].response
    assert tiny_gen.generate(requests, GREEDY, batch_size=1) == results


def test_length_finish_when_budget_is_tiny(tiny_gen: HFGenerator) -> None:
    results = tiny_gen.generate(_requests(TEXTS), SamplingConfig(do_sample=False, max_new_tokens=3))
    assert all(r.finish_reason == "length" and r.n_new_tokens == 3 for r in results)
    assert all(len(r.response.split()) <= 3 for r in results)


def test_progress_and_batch_logging(tiny_gen: HFGenerator, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[int, int]] = []
    with caplog.at_level(logging.INFO, logger="qos_pipeline.generation"):
        tiny_gen.generate(_requests(TEXTS[:3]), GREEDY, batch_size=2, progress=lambda *a: calls.append(a))
    assert calls == [(2, 3), (3, 3)]
    assert any(m.startswith("batch 2/2: 1 rows, ") for m in caplog.messages)


def test_prompt_too_long_names_prompt(tiny_gen: HFGenerator) -> None:
    calls: list[tuple[int, int]] = []
    long_request = GenerationRequest("too-long-7", 0, " ".join(["w1"] * 100), 0)
    with pytest.raises(ModelError, match="too-long-7"):
        tiny_gen.generate(_requests(TEXTS[:1]) + [long_request], GREEDY, progress=lambda *a: calls.append(a))
    assert calls == []  # checked before any batch runs


def test_tokenizer_without_chat_template(tiny_llama_no_template_dir: Path, tmp_path: Path) -> None:
    spec = resolve_model(str(tiny_llama_no_template_dir), ASSETS, tmp_path)
    with pytest.raises(ModelError, match=f"{spec.key}.*no chat template.*'chat:paper-system'"):
        HFGenerator(spec).generate(_requests(TEXTS[:1]), GREEDY)


def test_system_prompt_reaches_the_model(tiny_spec: ModelSpec) -> None:
    requests = _requests(TEXTS[:2])
    with_system = HFGenerator(tiny_spec).generate(requests, GREEDY)
    no_system = PromptFormat("chat:no-system", "chat", None)
    without = HFGenerator(tiny_spec).generate([dataclasses.replace(r, prompt_format=no_system) for r in requests],
                                              GREEDY)
    assert with_system != without


@pytest.mark.slow
def test_embedded_model_generates() -> None:
    spec = resolve_model("smollm2-135m-instruct", ASSETS, Paths.resolve().model_cache)
    assert spec.path.parent == Paths.resolve().model_cache and spec.version in spec.path.name
    assert resolve_model("smollm2-135m-instruct", ASSETS, Paths.resolve().model_cache) == spec  # cached
    generator = HFGenerator(spec)
    requests = _requests(["John went to the market to [BLANK].", "Mohammed went to the airport to [BLANK]."])
    results = generator.generate(requests, SamplingConfig(do_sample=False, max_new_tokens=48))
    assert all(r.response and 0 < r.n_new_tokens <= 48 for r in results)
    assert any(r.finish_reason == "eos" for r in results)  # a real chat model stops by itself
    assert SYSTEM_PROMPT not in results[0].response
