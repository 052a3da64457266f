"""Continuous batching: ``slots`` rows decode together, and a row that ends hands its slot to the next prompt.

Static batches run as long as their longest row; audit responses stop at very different lengths (the
pilot's: median 46 tokens, 2% past 256), so most of a static batch's slots idle after a few dozen steps.
Here the batch keeps its shape and stays full: every ``sync_every`` steps the host reads the tokens drawn,
ends the rows that hit eos or ``max_new_tokens``, and prefills waiting prompts (shortest first, in groups)
into the freed slots. Each layer's keys/values live in a slot cache (``slots.SlotKV``) written at each
row's own position, and each row attends to its own live range only.

Speed on CUDA: the ``sync_every`` decode steps (forward, seeded draw, bookkeeping) are captured once as a
CUDA graph and replayed, so the host's Python runs once per window instead of once per kernel; ``attention
"flex"`` reads only the live blocks of each slot; ``compile`` fuses the step's small kernels first. The
tail (no prompt left, rows thinning out) moves to an engine of a quarter of the slots, then a sixteenth,
so the last long rows do not drag every empty slot along. The device side is ``engine.SlotEngine``.

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
from collections.abc import Iterator, Sequence
from typing import Any, cast

import torch

from qos_pipeline.generation.decoding import BatchOOMError, Output, split_new_tokens
from qos_pipeline.generation.draws import RowHook
from qos_pipeline.generation.engine import SlotEngine
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig

log = logging.getLogger("qos_pipeline.generation")
PREFILL_TOKENS = 16384  # prompt tokens per prefill forward: bounds its activations, keeps its matmuls large


class Row:
    """A request in flight: its index and the tokens drawn so far (possibly past its end)."""

    __slots__ = ("index", "tokens", "ended")

    def __init__(self, index: int) -> None:
        self.tokens: list[int] = []
        self.index, self.ended = index, False

    def extend(self, tokens: Sequence[int], eos_ids: frozenset[int], max_new: int, ignore_eos: bool) -> bool:
        """Add drawn tokens; True once the row has hit eos (unless ignored) or ``max_new`` tokens."""
        self.tokens.extend(tokens)
        self.ended = self.ended or (not ignore_eos and not eos_ids.isdisjoint(tokens)) or len(self.tokens) >= max_new
        return self.ended

    def output(self, eos_ids: frozenset[int], max_new: int, ignore_eos: bool) -> Output:
        """The row's response tokens and finish reason (``eos`` or ``length``)."""
        if ignore_eos:
            return self.tokens[:max_new], "length"
        return split_new_tokens(self.tokens, eos_ids, max_new)


def _prefill_groups(free: list[int], queue: deque, encoded: Sequence[Sequence[int]]
                    ) -> Iterator[tuple[list[int], list[int]]]:
    """(slots, request indices) groups for the free slots, at most PREFILL_TOKENS padded tokens each."""
    while free and queue:
        slots: list[int] = []
        rows: list[int] = []
        while free and queue and ((len(rows) + 1) * len(encoded[queue[0]])
                                  <= max(PREFILL_TOKENS, len(encoded[queue[0]]))):
            slots.append(free.pop())
            rows.append(queue.popleft())
        yield slots, rows


def _decode(engine: SlotEngine, encoded, seeds, queue: deque, sampling: SamplingConfig, pad_id: int,
            eos_ids: frozenset[int], ignore_eos: bool, flush: int) -> Iterator[tuple[list[int], list[Output]]]:
    """The scheduler: fill the free slots, run a window, end rows, and so on until the queue is empty;
    then the last rows move to smaller engines as they thin out. Ended rows are yielded ``flush`` at a
    time (and the last ones at the end)."""
    stop: dict[str, Any] = dict(eos_ids=eos_ids, max_new=sampling.max_new_tokens, ignore_eos=ignore_eos)
    root, live = engine, cast(dict[int, Row], {})
    free = list(range(engine.kv.slots))[::-1]
    ended: list[Row] = []
    while queue or live:
        for slots, rows in _prefill_groups(free, queue, encoded):  # shortest prompts first: little padding
            firsts = root.prefill(slots, [encoded[i] for i in rows], [seeds[i] for i in rows], pad_id)
            for slot, index, first in zip(slots, rows, firsts):
                live[slot] = Row(index)
                if live[slot].extend([first], **stop):  # ended on its first token
                    ended.append(live.pop(slot))
                    free.append(slot)
        if not queue and live:
            engine, live = _shrink(root, engine, live)
        if live and not (free and queue):
            for slot, tokens in enumerate(engine.run_window()):
                row = live.get(slot)
                if row is not None and row.extend(tokens, **stop):
                    ended.append(live.pop(slot))
                    free.append(slot)
        if len(ended) >= flush or (ended and not queue and not live):
            yield [r.index for r in ended], [r.output(**stop) for r in ended]
            ended = []


def _shrink(root: SlotEngine, engine: SlotEngine, live: dict[int, Row]) -> tuple[SlotEngine, dict[int, Row]]:
    """The smallest engine that holds the live rows, with the rows moved into its slots."""
    target = engine
    while target.smaller is not None and len(live) <= target.smaller.kv.slots:
        target = target.smaller
    if target is engine:
        return engine, live
    size = target.kv.slots
    outside = [s for s in live if s >= size]
    vacant = [s for s in range(size) if s not in live]
    root.move(outside, vacant[: len(outside)])
    moved = dict(zip(outside, vacant))
    return target, {moved.get(s, s): row for s, row in live.items()}


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
