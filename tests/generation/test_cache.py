"""Resume, cache and per-row seeds of the generation step, on a tiny random Llama built in the test."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pandas as pd
import pytest

from qos_pipeline.generation import cache
from qos_pipeline.generation.step import generate
from qos_pipeline.prompts.design import load_design, render_prompts
from qos_pipeline.generation.interface import GenerationRequest, collect
from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.sampling import SamplingConfig, row_seed
from qos_pipeline.generation.models.registry import resolve_model
from qos_pipeline.generation.formats import select_formats
from tests.paths import ASSETS

SAMPLED = SamplingConfig(do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=6)
FORMATS = ["chat:paper-system", "chat:no-system"]
KEY = ["prompt_format", "prompt_id", "sample"]


class Counting:
    """A ``Generator`` delegating to a real one; counts the rows it is asked to generate; can die mid-run."""

    reproducible = True
    default_prompt_format = None

    def __init__(self, inner: HFGenerator, crash_at_batch: int | None = None) -> None:
        self.inner, self.crash_at_batch, self.rows = inner, crash_at_batch, 0
        self.model_key, self.model_version = inner.model_key, inner.model_version

    def generate(self, requests, sampling, batch_size=16, progress=None):
        return collect(self.iter_batches(requests, sampling, batch_size), len(requests), progress)

    def resolve_sampling(self, sampling):
        return self.inner.resolve_sampling(sampling)

    def iter_batches(self, requests, sampling, batch_size):
        self.rows += len(requests)
        for number, item in enumerate(self.inner.iter_batches(requests, sampling, batch_size)):
            if number == self.crash_at_batch:  # this batch was computed but never handed back: lost in flight
                raise KeyboardInterrupt("killed")
            yield item


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path, tmp_path_factory) -> HFGenerator:
    return HFGenerator(resolve_model(str(tiny_llama_dir), ASSETS, tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def prompts() -> pd.DataFrame:
    return render_prompts(load_design("demo", ASSETS), "muslim").head(6)  # 6 prompts


def _run(generator, prompts, cache_dir, run_id="r1", samples=2, formats=FORMATS, sampling=SAMPLED, seed=0):
    df, outcomes = generate(prompts, generator, sampling, samples, seed, 4, run_id,
                                     formats=select_formats(ASSETS, formats), cache_dir=cache_dir)
    assert all(o.passed for o in outcomes if o.blocking), [o for o in outcomes if not o.passed]
    return df.set_index(KEY).sort_index()


def test_resume_after_crash_loses_and_duplicates_nothing(tiny, prompts, tmp_path, caplog) -> None:
    reference = _run(tiny, prompts, None, "clean")  # uninterrupted, no cache
    crashing = Counting(tiny, crash_at_batch=3)
    with caplog.at_level(logging.WARNING, logger="qos_pipeline.generation"), pytest.raises(KeyboardInterrupt):
        _run(crashing, prompts, tmp_path, "r1")
    assert f"stopped after 12 of 24 rows (they are stored in {tmp_path}" in caplog.text
    assert len(cache.RowStore(tmp_path).load()) == 12  # 3 finished batches of 4; the 4th was in flight
    resumed = Counting(tiny)
    df = _run(resumed, prompts, tmp_path, "r2")
    assert resumed.rows == 24 - 12  # only what was missing
    assert len(df) == 24 and not df.index.duplicated().any() and df["cache_key"].is_unique
    assert (df["run_id"] == "r1").sum() == 12 and (df["run_id"] == "r2").sum() == 12
    # per-row seeds: the resumed table is the uninterrupted one, row for row
    cols = ["response", "finish_reason", "n_new_tokens", "seed", "gen_config_hash"]
    pd.testing.assert_frame_equal(df[cols], reference[cols])
    assert len(list(tmp_path.glob("*.parquet"))) == 1  # chunks compacted after the complete run


def test_cache_skips_stored_rows_and_regenerates_exactly_changed_keys(tiny, prompts, tmp_path) -> None:
    first = Counting(tiny)
    base = _run(first, prompts, tmp_path, "r1")
    again = Counting(tiny)
    pd.testing.assert_frame_equal(_run(again, prompts, tmp_path, "r2"), base)  # incl. run_id r1
    assert (first.rows, again.rows) == (24, 0)
    cases = [  # (change, rows that must be generated)
        (dict(formats=FORMATS + ["raw"]), 12),  # a new condition: its 6 prompts x 2 samples
        (dict(samples=3), 2 * 6),  # sample 2 of every prompt, in both formats
        (dict(sampling=dataclasses.replace(SAMPLED, temperature=0.5)), 24),  # sampling config hash
        (dict(seed=1), 24),  # every row's seed
    ]
    for change, expected in cases:
        counting = Counting(tiny)
        df = _run(counting, prompts, tmp_path, "r3", **change)
        assert counting.rows == expected, change
        assert set(df.loc[df["run_id"] != "r3", "cache_key"]) <= set(base["cache_key"])
    edited = prompts.copy()
    edited.loc[edited.index[0], "prompt_text"] = edited["prompt_text"].iloc[0].replace(" ", "  ", 1)
    counting = Counting(tiny)
    _run(counting, edited, tmp_path, "r4")
    assert counting.rows == 2 * 2  # the edited prompt's 2 samples in 2 formats


def test_cache_key_changes_with_each_part() -> None:
    fmt = select_formats(ASSETS, ["chat:paper-system"])[0]
    request = GenerationRequest("p1", 0, "Mei likes to cook [BLANK] .", 11, fmt)
    key = cache.cache_key("v1", request, "h1")
    variants = [cache.cache_key("v2", request, "h1"), cache.cache_key("v1", request, "h2"),
                cache.cache_key("v1", dataclasses.replace(request, prompt_id="p2"), "h1"),
                cache.cache_key("v1", dataclasses.replace(request, seed=12), "h1"),
                cache.cache_key("v1", dataclasses.replace(request, user_text="x [BLANK]"), "h1"),
                cache.cache_key("v1", dataclasses.replace(request, prompt_format=dataclasses.replace(
                    fmt, system="Be brief.")), "h1")]
    assert len({key, *variants}) == 7 and key == cache.cache_key("v1", request, "h1")


def test_a_seed_reproduces_a_row_exactly(tiny) -> None:
    fmt = select_formats(ASSETS, ["chat:paper-system"])[0]
    texts = ["John went to the market to [BLANK] .", "Mei likes to cook [BLANK] for her friends .",
             "Mohammed works as a [BLANK] at the airport .", "Mei likes to cook [BLANK] ."]
    requests = [GenerationRequest(f"p{i}", s, t, row_seed(5, f"p{i}", s), fmt)
                for i, t in enumerate(texts) for s in range(2)]
    batched = tiny.generate(requests, SAMPLED, batch_size=8)
    assert len({r.response for r in batched}) == len(requests)  # samples differ
    for i in (0, 5):  # any row, alone in its batch, comes back token for token
        assert tiny.generate([requests[i]], SAMPLED, batch_size=1) == [batched[i]]
    static = HFGenerator(tiny.spec, options=dataclasses.replace(tiny.options, static_cache=True))
    assert static.generate(requests, SAMPLED, batch_size=3) == batched


def test_out_of_memory_halves_the_batch(tiny, monkeypatch, caplog) -> None:
    import torch

    from qos_pipeline.generation import decoding

    requests = [GenerationRequest(f"p{i}", 0, "Mei likes to cook [BLANK] .", i) for i in range(6)]
    expected = tiny.generate(requests, SAMPLED, batch_size=6)
    real = decoding.decode_batch
    sizes: list[int] = []

    def small_gpu(model, rows, *args, **kwargs):
        sizes.append(len(rows))
        if len(rows) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, rows, *args, **kwargs)

    monkeypatch.setattr(decoding, "decode_batch", small_gpu)
    with caplog.at_level(logging.WARNING, logger="qos_pipeline.generation"):
        assert tiny.generate(requests, SAMPLED, batch_size=6) == expected  # same rows, smaller batches
    assert sizes == [6, 3, 3] and "out of memory at batch size 6; retrying with 3" in caplog.text
    monkeypatch.setattr(decoding, "decode_batch", lambda *a, **k: (_ for _ in ()).throw(
        torch.cuda.OutOfMemoryError("CUDA out of memory")))
    with pytest.raises(ValueError, match=f"model '{tiny.model_key}': CUDA out of memory even one prompt"):
        tiny.generate(requests[:2], SAMPLED, batch_size=2)


@pytest.mark.gpu
def test_cuda_paths_bf16_compiled_and_reproducible(tiny_llama_dir, tmp_path) -> None:
    from qos_pipeline.generation.sampling import DecodeOptions

    spec = resolve_model(str(tiny_llama_dir), ASSETS, tmp_path)
    requests = [GenerationRequest(f"p{i}", s, "Mei likes to cook [BLANK] .", row_seed(0, f"p{i}", s))
                for i in range(5) for s in range(2)]
    eager = HFGenerator(spec, device="cuda")
    first = eager.generate(requests, SAMPLED, batch_size=4)
    assert str(eager._model.dtype) == "torch.bfloat16" and eager.generate(requests, SAMPLED, 4) == first
    compiled = HFGenerator(spec, device="cuda", options=DecodeOptions(compile=True))
    runs = [compiled.generate(requests, SAMPLED, batch_size=4) for _ in range(2)]  # compile, then reuse
    assert runs[0] == runs[1] and all(0 < r.n_new_tokens <= SAMPLED.max_new_tokens for r in runs[0])


def test_generators_implement_the_whole_interface(tiny) -> None:
    from qos_pipeline.generation.interface import Generator
    from tests.fakes import FakeGenerator

    for generator in (tiny, Counting(tiny), FakeGenerator("m", frozenset())):
        assert isinstance(generator, Generator), type(generator).__name__
    assert not isinstance(object(), Generator)
