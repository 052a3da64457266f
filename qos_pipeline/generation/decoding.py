"""Batched decoding of token ids on a loaded causal LM: the engine under ``HFGenerator`` and the benchmark.

Speed: batches of similar prompt length, left padded; transformers' ``generate`` with a static KV cache and
a compiled forward when asked (CUDA: one fixed prompt width and batch size, so one compiled graph serves
every batch); the batch size halves on CUDA out-of-memory instead of failing.

Reproducibility: sampling happens here, by inverse CDF over the warped distribution (transformers' own
temperature / top-k / top-p warpers) with one uniform per row and step that is a pure function of (row
seed, step); transformers only takes the argmax. A row's tokens therefore do not depend on the other rows
of its batch: it can be regenerated alone, in another batch, after a resume or a batch-size back-off (up
to floating-point differences between batch shapes, which could move a draw only at a CDF boundary).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Iterator, Sequence

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig

log = logging.getLogger("qos_pipeline.generation")
_M32 = 0xFFFFFFFF
Output = tuple[list[int], str]  # new token ids (eos kept), finish reason


def split_new_tokens(
    new_ids: Sequence[int], eos_ids: frozenset[int], max_new_tokens: int
) -> tuple[list[int], str]:
    """Cut generated ids after the first eos (kept, so it is counted); say why generation stopped.

    Everything after the first eos is padding added while other rows of the batch kept going.
    """
    for pos, token in enumerate(new_ids[:max_new_tokens]):
        if token in eos_ids:
            return list(new_ids[: pos + 1]), "eos"
    return list(new_ids[:max_new_tokens]), "length"


class BatchOOMError(RuntimeError):
    """CUDA ran out of memory with a single prompt in the batch: backing off further is impossible."""


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    # (x * c) mod 2**32 via 16-bit halves: int64 products stay below 2**49, so nothing overflows on any device.
    return ((x & 0xFFFF) * c + ((((x >> 16) * c) & 0xFFFF) << 16)) & _M32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    # "lowbias32" integer hash (C. Wellons): each input bit flips about half the output bits.
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def row_uniforms(seeds: torch.Tensor, step: int) -> torch.Tensor:
    """One float64 uniform in (0, 1) per row: a pure function of (row seed, step), like a counter-based RNG."""
    bits = _mix32(_mix32(seeds & _M32) ^ _mix32(torch.full_like(seeds, step + 0x9E3779B9) & _M32))
    return (bits.to(torch.float64) + 0.5) / 4294967296.0


class SeededSampler(LogitsProcessor):
    """Last processor of a sampled run: draws each row's token by inverse CDF with its own uniform, and
    returns scores whose argmax (transformers' greedy step) is that token. One uniform per row and step,
    so the cost is a softmax and a cumulative sum over the vocabulary, independent of the other rows."""

    def __init__(self, seeds: torch.Tensor, prompt_width: int) -> None:
        self.seeds, self.prompt_width = seeds, prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_width
        cdf = torch.softmax(scores.float(), dim=-1).to(torch.float64).cumsum(dim=-1)
        # scaled by the row's total, so rounding in the sum can never push u past the last token
        u = row_uniforms(self.seeds[: scores.shape[0]], step).to(cdf.device) * cdf[:, -1]
        token = torch.searchsorted(cdf, u[:, None]).clamp_(max=scores.shape[-1] - 1)
        chosen = torch.full_like(scores, float("-inf"))
        return chosen.scatter_(1, token, 0.0)


def processors(sampling: SamplingConfig, seeds: torch.Tensor, prompt_width: int) -> LogitsProcessorList:
    """transformers' own warpers, in generate()'s order, then the seeded sampler."""
    procs: list[LogitsProcessor] = []
    if sampling.repetition_penalty not in (None, 1.0):
        procs.append(RepetitionPenaltyLogitsProcessor(penalty=sampling.repetition_penalty))
    if sampling.do_sample:
        if sampling.temperature not in (None, 1.0):
            procs.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k:
            procs.append(TopKLogitsWarper(top_k=sampling.top_k))
        if sampling.top_p is not None and sampling.top_p < 1.0:
            procs.append(TopPLogitsWarper(top_p=sampling.top_p))
        procs.append(SeededSampler(seeds, prompt_width))
    return LogitsProcessorList(procs)


def generation_config(sampling: SamplingConfig, pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                      width: int) -> GenerationConfig:
    """Greedy generate() (sampling is in the processors); every field set explicitly, so nothing is
    merged in from the model's own generation_config."""
    kwargs = {"max_new_tokens": sampling.max_new_tokens, "do_sample": False, "num_beams": 1,
              "pad_token_id": pad_id, "eos_token_id": sorted(eos_ids) or None, "repetition_penalty": 1.0,
              "disable_compile": not options.compile}
    if options.ignore_eos:
        kwargs["min_new_tokens"] = sampling.max_new_tokens
    if options.static_cache:
        kwargs.update(cache_implementation="static", max_cache_len=width + sampling.max_new_tokens)
    return GenerationConfig(**kwargs)


def decode_batch(model, rows: Sequence[Sequence[int]], seeds: Sequence[int], sampling: SamplingConfig,
                 pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                 width: int | None = None, fill_to: int | None = None) -> list[Output]:
    """Generate for one batch of token-id prompts (left padded to ``width``); one output per row.

    ``fill_to`` repeats the last row up to that many rows (their outputs are dropped), so a static-cache
    run keeps one batch shape and never recompiles for a short last batch."""
    n = len(rows)
    rows, seeds = list(rows), list(seeds)
    if fill_to and fill_to > n:
        rows += [rows[-1]] * (fill_to - n)
        seeds += [seeds[-1]] * (fill_to - n)
    width = max(width or 0, max(len(r) for r in rows))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for i, ids in enumerate(rows):
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[i, width - len(ids):] = 1
    device = model.device
    seed_tensor = torch.tensor(seeds, dtype=torch.int64, device=device)
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                             generation_config=generation_config(sampling, pad_id, eos_ids, options, width),
                             logits_processor=processors(sampling, seed_tensor, width))
    new_rows = out[:n, width:].tolist()
    if options.ignore_eos:
        return [(row, "length") for row in new_rows]
    return [split_new_tokens(row, eos_ids, sampling.max_new_tokens) for row in new_rows]


def static_width(encoded: Sequence[Sequence[int]], multiple: int) -> int:
    longest = max(len(ids) for ids in encoded)
    return int(math.ceil(longest / multiple) * multiple)


def _free_cuda() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_batches(model, encoded: Sequence[Sequence[int]], seeds: Sequence[int], sampling: SamplingConfig,
                batch_size: int, pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                ) -> Iterator[tuple[list[int], list[Output]]]:
    """Yield ``(indices into encoded, outputs)`` batch by batch, shortest prompts first.

    On CUDA out-of-memory the batch is retried at half the size (and later batches keep that size);
    at size 1 it raises BatchOOMError."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))  # ties keep request order
    width = static_width(encoded, options.pad_multiple) if options.static_cache and encoded else None
    pos, size, number = 0, batch_size, 0
    while pos < len(order):
        batch = order[pos:pos + size]
        started = time.perf_counter()
        try:
            outputs = decode_batch(model, [encoded[i] for i in batch], [seeds[i] for i in batch], sampling,
                                   pad_id, eos_ids, options, width, size if options.static_cache else None)
        except torch.cuda.OutOfMemoryError as exc:
            if size == 1:
                raise BatchOOMError(str(exc).splitlines()[0] if str(exc) else "out of memory") from None
            out_of_memory = True
        else:
            out_of_memory = False
        if out_of_memory:  # outside the except block, so the failed batch's tensors can be freed
            _free_cuda()
            log.warning("CUDA out of memory at batch size %d; retrying with %d", size, size // 2)
            size //= 2
            continue
        pos, number = pos + len(batch), number + 1
        seconds = time.perf_counter() - started
        tokens = sum(len(ids) for ids, _ in outputs)
        planned = number + math.ceil((len(order) - pos) / size)
        log.info("batch %d/%d: %d rows, %.1f s, %.0f new tokens/s", number, planned, len(batch), seconds,
                 tokens / max(seconds, 1e-9))
        yield batch, outputs
