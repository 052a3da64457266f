"""The one model loader and its cache (qos_pipeline.generation.models.loaded), on tiny random Llamas built here:
one object per key, one load shared by the generator and the llm judge, the learned judge's hidden states
beside them, eviction beyond the limit (memory freed), a retry after running out of GPU memory, and one-line
errors for a folder that cannot be loaded as asked."""

from __future__ import annotations

import gc
import json
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest

from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.interface import GenerationRequest
from qos_pipeline.generation.models import loaded as loaded_module
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.loaded import LoadedModels, LoadKey, load
from qos_pipeline.generation.models.registry import resolve_model
from qos_pipeline.generation.sampling import SamplingConfig
from qos_pipeline.judging.llm import LLMJudge
from qos_pipeline.judging.representations import HiddenStates
from qos_pipeline.judging.toxicity import ToxicityClassifier
from qos_pipeline.judging.rubric import load_rubric
from tests.judging.test_llm import ITEMS, RUBRIC, _tiny
from tests.paths import ASSETS

GREEDY = SamplingConfig(do_sample=False, max_new_tokens=4)


@pytest.fixture
def models(monkeypatch) -> LoadedModels:
    """A fresh process-wide cache for the test (the real one, so every user of the loader goes through it)."""
    fresh = LoadedModels()
    monkeypatch.setattr(loaded_module, "MODELS", fresh)
    return fresh


@pytest.fixture(scope="module")
def rubric(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rubric")
    (folder / "rubric.yaml").write_text(RUBRIC)
    return load_rubric(folder)


def _key(k: int) -> LoadKey:
    return LoadKey(f"/m{k}", "v", "causal", "float32", "cpu")


def test_the_same_key_gives_the_same_object_and_another_class_another(tiny_llama_dir, models):
    first = load(tiny_llama_dir, "tiny", device="cpu")
    assert load(str(tiny_llama_dir), "tiny", device="cpu") is first and models.loads == 1
    assert first.key == LoadKey(str(tiny_llama_dir.resolve()), first.key.version, "causal", "float32", "cpu")
    assert first.memo("x", list) is first.memo("x", dict)  # derived once per loaded model
    base = load(tiny_llama_dir, "tiny", kind="base", device="cpu")
    assert base is not first and type(base.model).__name__ == "LlamaModel" and models.loads == 2
    assert load(tiny_llama_dir, "tiny", version="other", device="cpu") is not first  # another content version


def test_the_generator_and_the_llm_judge_share_one_load_and_judge_alike(tmp_path, rubric, models):
    folder = _tiny(tmp_path / "judge", None)
    spec = resolve_model(str(folder), ASSETS, tmp_path / "cache")

    def judge() -> LLMJudge:
        return LLMJudge(folder, spec.key, spec.version, rubric, device="cpu")

    alone = [(j.label, j.scores, j.reason) for j in judge().judge(ITEMS)]  # the judge loads first
    models.clear()
    generator = HFGenerator(spec, device="cpu")
    generator.generate([GenerationRequest("p", 0, "Sam went to [BLANK]", 1)], GREEDY)
    after = judge()
    # the same model object, loaded once, and the same judgments whoever loaded it first
    assert [(j.label, j.scores, j.reason) for j in after.judge(ITEMS)] == alone
    assert after._model is generator._model and models.loads == 2  # the judge's alone, then the shared one
    assert judge()._model is None and judge().judge(ITEMS[:1]) and models.loads == 2  # a new judge: no new load


def test_hidden_states_of_any_layer_leave_the_shared_model_whole(tiny_llama_dir, models):
    texts = ["market cook friends", "w1 w2 w3"]
    fresh = HiddenStates(str(tiny_llama_dir), "v1", layer=2).transform(texts)
    models.clear()
    shallow = HiddenStates(str(tiny_llama_dir), "v1", layer=1).transform(texts)
    again = HiddenStates(str(tiny_llama_dir), "v1", layer=2).transform(texts)
    assert np.array_equal(again, fresh) and not np.allclose(shallow, fresh)
    [entry] = [load(tiny_llama_dir, "tiny", kind="base", version="v1", device="cpu")]
    assert len(entry.model.layers) == 2 and models.loads == 2  # after the clear: one base model, two views over it
    with pytest.raises(ValueError, match="layer 3 of .*: it has 2 blocks; use 1-2"):
        HiddenStates(str(tiny_llama_dir), "v1", layer=3).transform(["cook"])


def test_beyond_its_limit_the_least_recently_used_is_evicted_and_freed(tiny_llama_dir):
    models = LoadedModels(limit=2)
    a = load(tiny_llama_dir, "tiny", version="a", device="cpu", models=models)
    gone = weakref.ref(a.model)
    load(tiny_llama_dir, "tiny", version="b", device="cpu", models=models)
    load(tiny_llama_dir, "tiny", version="a", device="cpu", models=models)  # used again: b is now the oldest
    load(tiny_llama_dir, "tiny", version="c", device="cpu", models=models)
    assert [k.version for k in models.keys()] == ["a", "c"] and models.loads == 3
    del a
    models.resize(1)
    gc.collect()
    assert [k.version for k in models.keys()] == ["c"] and gone() is None  # evicted and its memory freed
    with pytest.raises(ValueError, match="at least one model"):
        models.resize(0)


def test_running_out_of_gpu_memory_evicts_the_others_and_tries_once_more():
    import torch

    tried: list[int] = []  # how many other models were loaded at each try

    def big(models: LoadedModels, fits_alone: bool) -> str:
        tried.append(len(models))
        if len(models) or not fits_alone:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return "big"

    models = LoadedModels(limit=3)
    models.get(_key(1), lambda: "small")
    assert models.get(_key(2), lambda: big(models, True)).model == "big"
    assert tried == [1, 0] and models.keys() == [_key(2)]
    tried.clear()
    with pytest.raises(torch.OutOfMemoryError):  # too big even alone: raised to the caller (load names it)
        models.get(_key(3), lambda: big(models, False))
    assert tried == [1, 0] and len(models) == 0


def test_too_big_even_alone_is_one_line_naming_the_model(tiny_llama_dir, monkeypatch, models):
    import torch

    from qos_pipeline.generation.models import loading

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore detail")

    monkeypatch.setattr(loading, "load_weights", oom)
    with pytest.raises(ModelError) as exc:
        load(tiny_llama_dir, "big-one", device="cpu")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("model 'big-one' does not fit in GPU memory")
    assert len(models) == 0


BROKEN = {
    "no-weights": (lambda f: [p.unlink() for p in f.glob("*.safetensors")], "causal",
                   r"model 'ckpt': .* holds no weight files \(\*\.safetensors\); .*re-save it with save_pretrained"),
    "custom-code": (lambda f: (f / "config.json").write_text(json.dumps(
        {**json.loads((f / "config.json").read_text()), "auto_map": {"AutoModel": "x.Y"}})), "causal",
        r"names custom model code .*which qos never runs"),
    "causal-as-classifier": (lambda f: None, "classifier",
                             r"model 'ckpt': .* holds no weights for score.weight of a LlamaForSequenceClassification "
                             r"\(it is a LlamaForCausalLM\), so they would be random; use a checkpoint of that kind"),
    "unknown-architecture": (lambda f: (f / "config.json").write_text(json.dumps(
        {**json.loads((f / "config.json").read_text()), "model_type": "no-such-model"})), "causal",
        r"model 'ckpt': cannot load it as a AutoModelForCausalLM from .*re-save the checkpoint"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_folder_that_cannot_be_loaded_as_asked_is_one_line_naming_it(tmp_path, tiny_llama_dir, models, case):
    damage, kind, match = BROKEN[case]
    folder = Path(shutil.copytree(tiny_llama_dir, tmp_path / "ckpt"))
    damage(folder)
    with pytest.raises(ModelError, match=match) as exc:
        load(folder, "ckpt", kind=kind, version="v", device="cpu")
    assert "\n" not in str(exc.value) and len(models) == 0


def test_a_causal_lm_is_no_toxicity_classifier(tiny_llama_dir, models):
    clf = ToxicityClassifier(tiny_llama_dir, "tiny", "0123456789abcdef", device="cpu")
    with pytest.raises(ModelError, match="holds no weights for score.weight"):
        clf.score(["you idiot"])


def test_dtype_and_device_map_choices():
    from qos_pipeline.generation.models.loading import load_kwargs, resolve_dtype

    assert resolve_dtype("cpu", "bfloat16") == "float32" and resolve_dtype("cuda", None) == "bfloat16"
    assert load_kwargs("cuda", "auto", 1)["dtype"] == "auto"  # the checkpoint's own dtype
    assert load_kwargs("cuda", "bfloat16", 2)["device_map"] == "auto"  # spread over the visible GPUs
    assert "device_map" not in load_kwargs("cuda:1", "float16", 2)  # one GPU named: that one
    assert load_kwargs("auto", "float16", 1)["device_map"] == "auto"  # accelerate decides (GPUs, then CPU)
    cpu = load_kwargs("cpu", "float32", 0)
    assert "device_map" not in cpu and cpu["trust_remote_code"] is False


@pytest.mark.gpu
def test_on_cuda_bf16_by_default_and_an_evicted_model_frees_its_gpu_memory(tiny_llama_dir):
    import torch

    models, before = LoadedModels(limit=1), torch.cuda.memory_allocated()
    entry = load(tiny_llama_dir, "tiny", device="cuda", models=models)
    assert entry.key.dtype == "bfloat16" and entry.model.dtype == torch.bfloat16
    assert next(entry.model.parameters()).is_cuda and torch.cuda.memory_allocated() > before
    del entry
    load(tiny_llama_dir, "tiny", kind="base", dtype="float32", device="cpu", models=models)  # evicts it
    assert torch.cuda.memory_allocated() == before
