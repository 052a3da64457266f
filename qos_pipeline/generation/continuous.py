"""Continuous batching: ``slots`` rows decode together, and a row that ends hands its slot to the next prompt.

Static batches run as long as their longest row; audit responses stop at very different lengths (the
pilot's: median 46 tokens, 2% past 256), so most of a static batch's slots idle after a few dozen steps.
Here the batch keeps its shape and stays full: every ``sync_every`` steps the host reads the tokens drawn,
ends the rows that hit eos or ``max_new_tokens``, and prefills waiting prompts (shortest first, in groups)
into the freed slots. Each layer's keys/values live in a slot cache (``slots.SlotKV``) written at each
row's own position, and each row attends to its own live range only.

Speed on CUDA: the ``sync_every`` decode steps (forward, seeded draw, bookkeeping) are captured once as a
CUDA graph and replayed, so the host's Python runs once per window instead of once per kernel; ``attention
"flex"`` reads only the live blocks of each slot; ``compile`` fuses the step's small kernels first.

Reproducibility: a row's draws are those of the batched decoder (``draws``: the uniform of step k is a
function of the row's seed and k), its attention reads its own slot only and its positions are its own,
so a row's tokens do not depend on which rows share the batch, the number of slots or the decoder (up to
floating-point differences between shapes, as for the batched decoder). Rows that end mid-window run on
for at most ``sync_every - 1`` steps whose tokens are dropped.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Iterator, Sequence

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from qos_pipeline.generation.decoding import BatchOOMError, Output, split_new_tokens
from qos_pipeline.generation.draws import RowHook, has_penalty, seeded_pick, warpers
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig
from qos_pipeline.generation.slots import SlotKV, use_slot_attention

log = logging.getLogger("qos_pipeline.generation")
PREFILL_TOKENS = 16384  # prompt tokens per prefill forward: bounds its activations, keeps its matmuls large


class SlotEngine:
    """The device side: slot cache, per-slot state tensors (updated in place), prefill and decode windows."""

    def __init__(self, model, slots: int, capacity: int, sampling: SamplingConfig, options: DecodeOptions,
                 hook: RowHook | None = None) -> None:
        use_slot_attention(model)
        self.model, self.sampling, self.hook, self.window = model, sampling, hook, options.sync_every
        self.kv = SlotKV(model, slots, capacity, options.attention)
        device, long = model.device, dict(dtype=torch.long, device=model.device)
        self.tokens, self.rope = torch.zeros(slots, **long), torch.zeros(slots, **long)
        self.seeds, self.steps = torch.zeros(slots, **long), torch.zeros(slots, **long)
        self.history = torch.zeros((slots, self.window), **long)
        # the row's tokens by position (prompt, then drawn), for the repetition penalty only
        self.seen = torch.zeros((slots, self.kv.capacity), **long) if has_penalty(sampling) else None
        self.warpers = warpers(sampling)
        self.penalty = RepetitionPenaltyLogitsProcessor(penalty=sampling.repetition_penalty or 1.0)
        self.forward = model.forward
        if options.compile and device.type == "cuda":
            self.forward = torch.compile(model.forward, dynamic=False)  # decode shapes only; prefill stays eager
        self.graph = self._capture() if options.graphs and device.type == "cuda" else None

    def pick(self, scores: torch.Tensor, seeds: torch.Tensor, steps: torch.Tensor, seen: torch.Tensor | None):
        """Each row's next token: hook, repetition penalty, warpers, then the seeded draw (or argmax)."""
        if self.hook is not None:
            scores = self.hook(scores, seeds, steps)
        if seen is not None:
            scores = self.penalty(seen, scores)
        for warp in self.warpers:
            scores = warp(None, scores)
        return seeded_pick(scores, seeds, steps) if self.sampling.do_sample else scores.argmax(dim=-1)

    def _step(self, j: int) -> None:
        kv = self.kv
        kv.update_mask()
        out = self.forward(input_ids=self.tokens[:, None], position_ids=self.rope[:, None], attention_mask=kv.mask,
                           use_cache=False, slot_kv=kv, logits_to_keep=1)
        token = self.pick(out.logits[:, -1, :].float(), self.seeds, self.steps, self.seen)
        self.history[:, j].copy_(token)
        if self.seen is not None:
            self.seen.scatter_(1, (self.rope + 1).clamp(max=kv.capacity - 1)[:, None], token[:, None])
        self.tokens.copy_(token)
        last = kv.capacity - 1  # free slots run on; clamped, they write the last position of their own slot
        kv.pos.add_(1).clamp_(max=last)
        self.rope.add_(1).clamp_(max=last)
        self.steps.add_(1)

    def _steps(self) -> None:
        for j in range(self.window):
            self._step(j)

    @torch.inference_mode()
    def _capture(self):
        """One CUDA graph for a whole window; warmed up eagerly first (kernels, compiles, cuBLAS), then the
        state tensors are zeroed (no slot is live yet). Falls back to eager windows if capture fails."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(stream):
                self._steps()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._steps()
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as exc:  # many kinds (capture errors, compile errors); eager still works
            log.warning("CUDA graph capture failed (%s); decoding without it", str(exc).splitlines()[0][:200])
            torch.cuda.synchronize()
            graph = None
        for state in (self.tokens, self.rope, self.seeds, self.steps, self.kv.pos, self.kv.start):
            state.zero_()
        return graph

    @torch.inference_mode()
    def run_window(self) -> list[list[int]]:
        """``sync_every`` decode steps for every slot; the tokens drawn, [slots][sync_every]."""
        if self.graph is not None:
            self.graph.replay()
        else:
            self._steps()
        return self.history.tolist()

    @torch.inference_mode()
    def prefill(self, slots: Sequence[int], rows: Sequence[Sequence[int]], seeds: Sequence[int],
                pad_id: int) -> list[int]:
        """Prompts into ``slots`` (one causal forward, left padded); returns each row's first token."""
        device, n, width = self.model.device, len(rows), max(len(r) for r in rows)
        ids = torch.full((n, width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, width - len(row):] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row):] = 1
        lengths = mask.sum(1)
        ids, mask, lengths = ids.to(device), mask.to(device), lengths.to(device)
        where = torch.tensor(list(slots), dtype=torch.long, device=device)
        seed = torch.tensor(list(seeds), dtype=torch.long, device=device)
        self.kv.mode, self.kv.prefill_slots = "prefill", where
        try:
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                             use_cache=False, slot_kv=self.kv, logits_to_keep=1)
        finally:
            self.kv.mode, self.kv.prefill_slots = "decode", None
        seen = None
        if self.seen is not None:  # the prompt left-aligned, the rest filled with its first token (a no-op)
            seen = ids[:, -1:].expand(n, self.kv.capacity).clone()
            for i, row in enumerate(rows):
                seen[i, : len(row)] = ids[i, width - len(row):]
        first = self.pick(out.logits[:, -1, :].float(), seed, torch.zeros_like(seed), seen)
        if seen is not None:
            seen.scatter_(1, lengths[:, None], first[:, None])
            self.seen[where] = seen
        self.tokens[where], self.rope[where], self.seeds[where] = first, lengths, seed
        self.steps[where] = 1
        self.kv.pos[where], self.kv.start[where] = width, width - lengths
        return first.tolist()


class Row:
    """A request in flight: its index and the tokens drawn so far (possibly past its end)."""

    __slots__ = ("index", "tokens", "ended")

    def __init__(self, index: int) -> None:
        self.index, self.tokens, self.ended = index, [], False

    def extend(self, tokens: Sequence[int], eos_ids: frozenset[int], max_new: int, ignore_eos: bool) -> bool:
        """Add drawn tokens; True once the row has hit eos (unless ignored) or ``max_new`` tokens."""
        self.tokens.extend(tokens)
        self.ended = self.ended or (not ignore_eos and not eos_ids.isdisjoint(tokens)) or len(self.tokens) >= max_new
        return self.ended

    def output(self, eos_ids: frozenset[int], max_new: int, ignore_eos: bool) -> Output:
        if ignore_eos:
            return self.tokens[:max_new], "length"
        return split_new_tokens(self.tokens, eos_ids, max_new)


def _prefill_groups(free: list[int], queue: deque, encoded: Sequence[Sequence[int]]) -> Iterator[tuple[list[int], list[int]]]:
    """(slots, request indices) groups for the free slots, at most PREFILL_TOKENS padded tokens each."""
    while free and queue:
        slots, rows = [], []
        while free and queue and (len(rows) + 1) * len(encoded[queue[0]]) <= max(PREFILL_TOKENS, len(encoded[queue[0]])):
            slots.append(free.pop())
            rows.append(queue.popleft())
        yield slots, rows


def _decode(engine: SlotEngine, encoded, seeds, queue: deque, sampling: SamplingConfig, pad_id: int,
            eos_ids: frozenset[int], ignore_eos: bool, flush: int) -> Iterator[tuple[list[int], list[Output]]]:
    """The scheduler: fill the free slots, run a window, end rows, and so on until the queue is empty;
    ended rows are yielded ``flush`` at a time (and the last ones at the end)."""
    stop = dict(eos_ids=eos_ids, max_new=sampling.max_new_tokens, ignore_eos=ignore_eos)
    live: dict[int, Row] = {}
    free = list(range(engine.kv.slots))[::-1]
    ended: list[Row] = []
    while queue or live:
        for slots, rows in _prefill_groups(free, queue, encoded):  # shortest prompts first: little padding
            firsts = engine.prefill(slots, [encoded[i] for i in rows], [seeds[i] for i in rows], pad_id)
            for slot, index, first in zip(slots, rows, firsts):
                live[slot] = Row(index)
                if live[slot].extend([first], **stop):  # ended on its first token
                    ended.append(live.pop(slot))
                    free.append(slot)
        if live and not (free and queue):
            for slot, tokens in enumerate(engine.run_window()):
                row = live.get(slot)
                if row is not None and row.extend(tokens, **stop):
                    ended.append(live.pop(slot))
                    free.append(slot)
        if len(ended) >= flush or (ended and not queue and not live):
            yield [r.index for r in ended], [r.output(**stop) for r in ended]
            ended = []


def run_continuous(model, encoded: Sequence[Sequence[int]], seeds: Sequence[int], sampling: SamplingConfig,
                   slots: int, pad_id: int, eos_ids: frozenset[int], options: DecodeOptions,
                   hook: RowHook | None = None, engines: dict | None = None,
                   ) -> Iterator[tuple[list[int], list[Output]]]:
    """Yield ``(indices into encoded, outputs)`` as rows end, about ``slots`` rows at a time.

    ``engines``: a dict kept by the caller, so the next call with the same shapes and settings reuses the
    slot cache and its captured CUDA graph (one entry is kept). On CUDA out-of-memory the unfinished rows
    start again with half the slots (their draws are seeded, so they come out the same); with one slot it
    raises BatchOOMError."""
    _one_device(model)
    engines = {} if engines is None else engines
    remaining = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))
    while remaining:
        size = min(slots, len(remaining))
        capacity = max(len(encoded[i]) for i in remaining) + sampling.max_new_tokens + options.sync_every
        capacity = -(-capacity // 16) * 16  # rounded, so calls with similar prompts share one engine
        key = (size, capacity, sampling, options, id(hook))
        started, done, tokens = time.perf_counter(), set(), 0
        try:
            if key not in engines:
                engines.clear()  # one slot cache in memory at a time
                engines[key] = SlotEngine(model, size, capacity, sampling, options, hook)
            for indices, outputs in _decode(engines[key], encoded, seeds, deque(remaining), sampling, pad_id,
                                            eos_ids, options.ignore_eos, flush=size):
                done.update(indices)
                tokens += sum(len(ids) for ids, _ in outputs)
                log.info("continuous (%d slots): %d/%d rows, %.0f new tokens/s", size, len(done), len(remaining),
                         tokens / max(time.perf_counter() - started, 1e-9))
                yield indices, outputs
            return
        except torch.cuda.OutOfMemoryError as exc:
            if size == 1:
                raise BatchOOMError(str(exc).splitlines()[0] if str(exc) else "out of memory") from None
        engines.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        log.warning("CUDA out of memory with %d slots; going on with %d", size, size // 2)
        remaining, slots = [i for i in remaining if i not in done], size // 2


def _one_device(model) -> None:
    devices = set((getattr(model, "hf_device_map", None) or {}).values())
    if len(devices) > 1:
        raise ValueError(f"the continuous decoder needs the model on one device; this one is spread over "
                         f"{sorted(map(str, devices))}: use decoder 'batched' for it")
