"""The continuous decoder's device side (``SlotEngine``): the slot cache, each slot's state as tensors
updated in place, the prefill of new prompts into freed slots, and decode windows of ``sync_every`` steps,
captured once as a CUDA graph on CUDA. The scheduling around it is ``continuous``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from qos_pipeline.generation.draws import RowHook, has_penalty, seeded_pick, warpers
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig
from qos_pipeline.generation.slots import SlotKV, use_slot_attention

log = logging.getLogger("qos_pipeline.generation")


class SlotEngine:
    """The device side: slot cache, per-slot state tensors (updated in place), prefill and decode windows.

    For the tail of a call (no prompt left, fewer rows than slots) it holds ``smaller``: an engine over the
    first quarter of its slots (views of the same tensors, its own CUDA graph), and so on down to a
    sixteenth; the scheduler moves the live rows there, so the last rows do not pay for empty slots."""

    STATE = ("tokens", "rope", "seeds", "steps")
    # per-slot state, set by name (``STATE``) in __init__
    tokens: torch.Tensor
    rope: torch.Tensor
    seeds: torch.Tensor
    steps: torch.Tensor
    root_slots: int
    pool: Any  # the CUDA graphs' memory pool handle, once captured

    def __init__(self, model, slots: int, capacity: int, sampling: SamplingConfig, options: DecodeOptions,
                 hook: RowHook | None = None, parent: SlotEngine | None = None) -> None:
        self.model, self.sampling, self.hook, self.window = model, sampling, hook, options.sync_every
        long = dict(dtype=torch.long, device=model.device)
        if parent is None:
            use_slot_attention(model)
            self.kv = SlotKV(model, slots, capacity, options.attention)
            for name in self.STATE:
                setattr(self, name, torch.zeros(slots, **long))
            self.history = torch.zeros((slots, self.window), **long)
            # the row's tokens by position (prompt, then drawn), for the repetition penalty only
            self.seen = torch.zeros((slots, self.kv.capacity), **long) if has_penalty(sampling) else None
            self.forward = model.forward
            if options.compile and model.device.type == "cuda":  # decode shapes only; prefill stays eager
                self.forward = torch.compile(model.forward, dynamic=False)
            root_slots, self.pool = slots, None
        else:
            self.kv = parent.kv.head(slots)
            for name in self.STATE + ("history",):
                setattr(self, name, getattr(parent, name)[:slots])
            self.seen = None if parent.seen is None else parent.seen[:slots]
            self.forward, root_slots, self.pool = parent.forward, parent.root_slots, parent.pool
        self.root_slots = root_slots
        self.warpers = warpers(sampling)
        self.penalty = RepetitionPenaltyLogitsProcessor(penalty=sampling.repetition_penalty or 1.0)
        self.graph = self._capture() if options.graphs and model.device.type == "cuda" else None
        # no smaller engines under compile: each batch shape would compile anew
        small = slots // 4
        self.smaller = (SlotEngine(model, small, capacity, sampling, options, hook, self)
                        if small >= max(1, root_slots // 16) and not options.compile else None)

    def move(self, src: Sequence[int], dst: Sequence[int]) -> None:
        """Move rows from slots ``src`` to slots ``dst`` (their cache, positions, seeds, steps)."""
        if not src:
            return
        device = self.tokens.device
        src_t = torch.tensor(list(src), dtype=torch.long, device=device)
        dst_t = torch.tensor(list(dst), dtype=torch.long, device=device)
        with torch.inference_mode():
            self.kv.move(src_t, dst_t)
            for name in self.STATE + (("seen",) if self.seen is not None else ()):
                t = getattr(self, name)
                t[dst_t] = t[src_t]

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
            with torch.cuda.graph(graph, pool=self.pool):  # one memory pool for all sizes: one runs at a time
                self._steps()
            self.pool = self.pool or graph.pool()
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
        if seen is not None and self.seen is not None:
            seen.scatter_(1, lengths[:, None], first[:, None])
            self.seen[where] = seen
        self.tokens[where], self.rope[where], self.seeds[where] = first, lengths, seed
        self.steps[where] = 1
        self.kv.pos[where], self.kv.start[where] = width, width - lengths
        return first.tolist()
