"""The continuous decoder (and the naive baseline) on tiny random Llamas built in-process: a row's tokens
are the same whatever rows share its batch, however many slots, and under the batched decoder."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import torch

from qos_pipeline.generation import continuous
from qos_pipeline.generation.continuous import run_continuous
from qos_pipeline.generation.decoding import naive_batches, run_batches
from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.interface import GenerationRequest
from qos_pipeline.generation.models.registry import resolve_model
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig, row_seed
from qos_pipeline.generation.stops import ForcedStops
from tests.paths import ASSETS

EOS, PAD = 2, 0
N = 13
SAMPLINGS = {
    "top-p": SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9, max_new_tokens=20),
    "greedy": SamplingConfig(do_sample=False, max_new_tokens=20),
    "top-k + repetition penalty": SamplingConfig(do_sample=True, top_k=5, repetition_penalty=1.3, max_new_tokens=20),
}


def _tiny(kv_heads: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=200, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=128,
                         bos_token_id=1, eos_token_id=EOS, pad_token_id=PAD)
    torch.manual_seed(0)
    return LlamaForCausalLM._from_config(config, attn_implementation="sdpa").eval()


@pytest.fixture(scope="module", params=[4, 2], ids=["mha", "gqa"])
def model(request):
    return _tiny(request.param)


@pytest.fixture(scope="module")
def rows() -> tuple[list[list[int]], list[int], ForcedStops]:
    """Prompts of 3..11 tokens, hashed seeds, and forced lengths from 0 to past the budget."""
    rng = random.Random(0)
    prompts = [[rng.randrange(3, 200) for _ in range(rng.randrange(3, 12))] for _ in range(N)]
    seeds = [row_seed(7, f"p{i}", 0) for i in range(N)]
    lengths = [0, 1, 5, 19, 25, 3, 7, 2, 11, 13, 9, 4, 30]
    return prompts, seeds, ForcedStops(seeds, lengths, EOS)


def _collect(batches, n: int) -> list:
    out: dict[int, tuple] = {}
    for indices, outputs in batches:
        assert not set(indices) & set(out), "a row came back twice"
        out.update(zip(indices, outputs))
    assert sorted(out) == list(range(n))
    return [out[i] for i in range(n)]


def _continuous(model, prompts, seeds, sampling, slots, hook, **options):
    opts = DecodeOptions(decoder="continuous", **options)
    return _collect(run_continuous(model, prompts, seeds, sampling, slots, PAD, frozenset({EOS}), opts, hook),
                    len(prompts))


@pytest.mark.parametrize("name", list(SAMPLINGS))
def test_rows_do_not_depend_on_batch_composition(model, rows, name) -> None:
    prompts, seeds, hook = rows
    sampling = SAMPLINGS[name].resolve()
    alone = [_collect(run_batches(model, [p], [s], sampling, 1, PAD, frozenset({EOS}), DecodeOptions(), hook), 1)[0]
             for p, s in zip(prompts, seeds)]
    assert len({tuple(ids) for ids, _ in alone}) == N  # rows distinguishable
    assert {reason for _, reason in alone} == {"eos", "length"}  # some rows end early, some at the budget
    batched = _collect(run_batches(model, prompts, seeds, sampling, 4, PAD, frozenset({EOS}), DecodeOptions(), hook), N)
    assert batched == alone
    for slots, options in [(1, {}), (3, {}), (8, dict(sync_every=3)), (32, dict(sync_every=1)),
                           (3, dict(attention="flex")), (5, dict(attention="flex", sync_every=7))]:
        assert _continuous(model, prompts, seeds, sampling, slots, hook, **options) == alone, (slots, options)
    # another composition: every other row, in reverse order, so each meets other neighbours and slots
    subset = list(range(N))[::-2]
    mixed = _continuous(model, [prompts[i] for i in subset], [seeds[i] for i in subset], sampling, 3, hook)
    assert mixed == [alone[i] for i in subset]


def test_forced_stops_give_each_row_its_length(model, rows) -> None:
    prompts, seeds, hook = rows
    sampling = SAMPLINGS["top-p"].resolve()
    for out in (_continuous(model, prompts, seeds, sampling, 4, hook),
                _collect(naive_batches(model, prompts, seeds, sampling, 4, PAD, frozenset({EOS}), DecodeOptions(),
                                       hook), N)):
        for (ids, reason), length in zip(out, hook.lengths_in(seeds)):
            if length < 20:
                assert reason == "eos" and len(ids) == length + 1 and ids[-1] == EOS and EOS not in ids[:-1]
            else:
                assert reason == "length" and len(ids) == 20 and EOS not in ids


def test_unlisted_seeds_are_untouched(model, rows) -> None:
    prompts, seeds, _ = rows
    sampling = SAMPLINGS["top-p"].resolve()
    plain = _continuous(model, prompts, seeds, sampling, 4, None)
    other = ForcedStops([s + 1 for s in seeds], [0] * N, EOS)
    assert _continuous(model, prompts, seeds, sampling, 4, other) == plain


def test_out_of_memory_halves_the_slots(model, rows, monkeypatch, caplog) -> None:
    prompts, seeds, hook = rows
    sampling = SAMPLINGS["top-p"].resolve()
    expected = _continuous(model, prompts, seeds, sampling, 8, hook)
    real = continuous.SlotEngine.run_window
    calls = {"n": 0}

    def failing(self):  # the 8-slot engine fails after a few windows, once some rows were yielded
        calls["n"] += 1
        if self.kv.slots > 2 and calls["n"] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self)

    monkeypatch.setattr(continuous.SlotEngine, "run_window", failing)
    with caplog.at_level(logging.WARNING, logger="qos_pipeline.generation"):
        assert _continuous(model, prompts, seeds, sampling, 8, hook) == expected
    assert any("going on with 4" in m for m in caplog.messages)
    assert any("going on with 2" in m for m in caplog.messages)


def test_engine_is_reused_across_calls(model, rows, monkeypatch) -> None:
    prompts, seeds, hook = rows
    sampling = SAMPLINGS["greedy"].resolve()
    built = []
    real = continuous.SlotEngine.__init__

    def counting(self, *args, **kwargs):
        if len(args) < 7 and kwargs.get("parent") is None:  # the engine itself, not its smaller ones
            built.append(args[1])
        real(self, *args, **kwargs)

    monkeypatch.setattr(continuous.SlotEngine, "__init__", counting)
    engines: dict = {}
    opts = DecodeOptions(decoder="continuous")
    first = _collect(run_continuous(model, prompts, seeds, sampling, 4, PAD, frozenset({EOS}), opts, hook,
                                    engines), N)
    again = _collect(run_continuous(model, prompts, seeds, sampling, 4, PAD, frozenset({EOS}), opts, hook,
                                    engines), N)
    assert first == again and built == [4]


def test_the_tail_moves_to_smaller_engines(model, rows, monkeypatch) -> None:
    prompts, seeds, _ = rows
    sampling = SAMPLINGS["top-p"].resolve()
    sizes = []
    real = continuous.SlotEngine.run_window

    def recording(self):
        sizes.append(self.kv.slots)
        return real(self)

    monkeypatch.setattr(continuous.SlotEngine, "run_window", recording)
    one_long = ForcedStops(seeds, [2] * (N - 1) + [30], EOS)  # the last row outlives all the others
    expected = _collect(run_batches(model, prompts, seeds, sampling, N, PAD, frozenset({EOS}), DecodeOptions(),
                                    one_long), N)
    assert _continuous(model, prompts, seeds, sampling, 8, one_long) == expected
    assert sizes[0] == 8 and sizes[-1] == 2 and sizes == sorted(sizes, reverse=True)


def test_model_spread_over_devices_is_refused(rows) -> None:
    spread = _tiny(4)
    spread.hf_device_map = {"model.layers.0": 0, "model.layers.1": 1}
    prompts, seeds, _ = rows
    with pytest.raises(ValueError, match="needs the model on one device.*batched"):
        _continuous(spread, prompts, seeds, SAMPLINGS["greedy"].resolve(), 4, None)


def test_bad_decode_options_name_the_choices() -> None:
    with pytest.raises(ValueError, match="decoder must be one of naive, batched, continuous; got 'fast'"):
        DecodeOptions(decoder="fast")
    with pytest.raises(ValueError, match="attention must be dense or flex"):
        DecodeOptions(decoder="continuous", attention="paged")
    assert not DecodeOptions(decoder="continuous", compile=True).static_cache  # a batched-only setting
    assert DecodeOptions(compile=True).static_cache


def test_generator_decoders(tiny_llama_dir: Path, tmp_path: Path) -> None:
    spec = resolve_model(str(tiny_llama_dir), ASSETS, tmp_path)
    texts = ["John went to the market to [BLANK] .", "Mei likes to cook [BLANK] .",
             "Mohammed works as a [BLANK] at the airport . Complete the [BLANK] ."]
    requests = [GenerationRequest(f"p{i}", s, t, row_seed(3, f"p{i}", s)) for i, t in enumerate(texts) for s in range(2)]
    sampling = SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9, max_new_tokens=10)
    batched = HFGenerator(spec).generate(requests, sampling, batch_size=4)
    cont = HFGenerator(spec, options=DecodeOptions(decoder="continuous"))
    assert cont.reproducible and cont.generate(requests, sampling, batch_size=3) == batched
    naive = HFGenerator(spec, options=DecodeOptions(decoder="naive"))
    assert not naive.reproducible  # its rows are never reused from the cache
    results = naive.generate(requests, sampling, batch_size=4)
    assert len(results) == len(requests) and all(r.n_new_tokens >= 1 for r in results)
