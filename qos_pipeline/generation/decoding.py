"""Batched decoding of token ids on a loaded causal LM: the engine under ``HFGenerator`` and the benchmark.

Speed: batches of similar prompt length, left padded; transformers' ``generate`` with a static KV cache and
a compiled forward when asked (CUDA: one fixed prompt width and batch size, so one compiled graph serves
every batch); the batch size halves on CUDA out-of-memory instead of failing.

Reproducibility: sampling happens here (``draws``), by inverse CDF over the warped distribution
(transformers' own temperature / top-k / top-p warpers) with one uniform per row and step that is a pure
function of (row seed, step); transformers only takes the argmax. A row's tokens therefore do not depend on the other
rows of its batch: it can be regenerated alone, in another batch, after a resume or a batch-size back-off (up
to floating-point differences between batch shapes, which could move a draw only at a CDF boundary).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import GenerationConfig

from qos_pipeline.generation.draws import RowHook, processors
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig

log = logging.getLogger("qos_pipeline.generation")
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


def generation_config(sampling: SamplingConfig, pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                      width: int) -> GenerationConfig:
    """Greedy generate() (sampling is in the processors); every field set explicitly, so nothing is
    merged in from the model's own generation_config."""
    kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens, "do_sample": False, "num_beams": 1,
              "pad_token_id": pad_id, "eos_token_id": sorted(eos_ids) or None, "repetition_penalty": 1.0,
              "disable_compile": not options.compile}
    if options.ignore_eos:
        kwargs["min_new_tokens"] = sampling.max_new_tokens
    if options.static_cache:
        kwargs.update(cache_implementation="static", max_cache_len=width + sampling.max_new_tokens)
    return GenerationConfig(**kwargs)


def decode_batch(model, rows: Sequence[Sequence[int]], seeds: Sequence[int], sampling: SamplingConfig,
                 pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                 width: int | None = None, fill_to: int | None = None, hook: RowHook | None = None) -> list[Output]:
    """Generate for one batch of token-id prompts (left padded to ``width``); one output per row.

    ``fill_to`` repeats the last row up to that many rows (their outputs are dropped), so a static-cache
    run keeps one batch shape and never recompiles for a short last batch. ``hook``: see ``draws.RowHook``."""
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
                             logits_processor=processors(sampling, seed_tensor, width,
                                                         [width - len(ids) for ids in rows], hook))
    new_rows = out[:n, width:].tolist()
    if options.ignore_eos:
        return [(row, "length") for row in new_rows]
    return [split_new_tokens(row, eos_ids, sampling.max_new_tokens) for row in new_rows]


def naive_batches(model, encoded: Sequence[Sequence[int]], seeds: Sequence[int], sampling: SamplingConfig,
                  batch_size: int, pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                  hook: RowHook | None = None) -> Iterator[tuple[list[int], list[Output]]]:
    """The baseline: plain ``generate`` on batches in request order, dynamic cache, transformers' own
    sampler (seeded per batch by its first row's seed, so a row depends on its batch: not reproducible
    alone). For comparison only; ``hook`` as for ``run_batches``."""
    for pos in range(0, len(encoded), batch_size):
        batch = list(range(pos, min(pos + batch_size, len(encoded))))
        rows = [encoded[i] for i in batch]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad_id] * (width - len(r)) + list(r) for r in rows], device=model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
        config = dict(max_new_tokens=sampling.max_new_tokens, pad_token_id=pad_id,
                      eos_token_id=sorted(eos_ids) or None, do_sample=bool(sampling.do_sample),
                      repetition_penalty=sampling.repetition_penalty or 1.0)
        if sampling.do_sample:
            config.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        if options.ignore_eos:
            config["min_new_tokens"] = sampling.max_new_tokens
        seed_tensor = torch.tensor([seeds[i] for i in batch], dtype=torch.int64, device=model.device)
        procs = processors(SamplingConfig(do_sample=False), seed_tensor, width, hook=hook) if hook else None
        torch.manual_seed(seeds[batch[0]])
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, logits_processor=procs,
                                 generation_config=GenerationConfig(**config))
        new_rows = out[:, width:].tolist()
        yield batch, ([(row, "length") for row in new_rows] if options.ignore_eos
                      else [split_new_tokens(row, eos_ids, sampling.max_new_tokens) for row in new_rows])


def static_width(encoded: Sequence[Sequence[int]], multiple: int) -> int:
    """The longest encoding's length rounded up to a multiple of ``multiple`` (a static cache's width)."""
    longest = max(len(ids) for ids in encoded)
    return int(math.ceil(longest / multiple) * multiple)


def _free_cuda() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_batches(model, encoded: Sequence[Sequence[int]], seeds: Sequence[int], sampling: SamplingConfig,
                batch_size: int, pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                hook: RowHook | None = None) -> Iterator[tuple[list[int], list[Output]]]:
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
                                   pad_id, eos_ids, options, width, size if options.static_cache else None,
                                   hook)
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
