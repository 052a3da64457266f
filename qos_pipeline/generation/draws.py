"""Per-row seeded token draws, shared by the batched and the continuous decoders.

A row's token at step k is drawn by inverse CDF over the warped distribution (transformers' own
temperature / top-k / top-p warpers) with one uniform that is a pure function of (row seed, k), like a
counter-based RNG: it does not depend on the other rows of the batch, on the batch's shape, nor on the
decoder. The batched decoder (``decoding``) passes these as transformers logits processors to
``generate``; the continuous decoder (``continuous``) calls ``pick`` with each row's own step.

A ``RowHook`` (``hook(scores, seeds, steps) -> scores``) may edit each row's scores before the warpers,
knowing its seed and step: the benchmarks force recorded response lengths with one (``lengths``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from qos_pipeline.generation.sampling import SamplingConfig

_M32 = 0xFFFFFFFF
RowHook = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``(scores [n, V], row seeds [n], row steps [n]) -> scores``: runs before the warpers."""


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


def row_uniforms(seeds: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    """One float64 uniform in (0, 1) per row: a pure function of (row seed, step), like a counter-based RNG.
    ``step``: one int for every row, or a tensor of each row's own step."""
    counter = (torch.as_tensor(step, dtype=torch.int64, device=seeds.device) + 0x9E3779B9).expand_as(seeds)
    bits = _mix32(_mix32(seeds & _M32) ^ _mix32(counter & _M32))
    return (bits.to(torch.float64) + 0.5) / 4294967296.0


def seeded_pick(scores: torch.Tensor, seeds: torch.Tensor, steps: int | torch.Tensor) -> torch.Tensor:
    """Each row's token [n] by inverse CDF of softmax(scores) with its own uniform; the cost is a softmax
    and a cumulative sum over the vocabulary, independent of the other rows."""
    cdf = torch.softmax(scores.float(), dim=-1).to(torch.float64).cumsum(dim=-1)
    # scaled by the row's total, so rounding in the sum can never push u past the last token
    u = row_uniforms(seeds, steps).to(cdf.device) * cdf[:, -1]
    return torch.searchsorted(cdf, u[:, None]).clamp_(max=scores.shape[-1] - 1).squeeze(1)


class SeededSampler(LogitsProcessor):
    """Last processor of a sampled ``generate``: returns scores whose argmax (transformers' greedy step)
    is the row's seeded draw."""

    def __init__(self, seeds: torch.Tensor, prompt_width: int) -> None:
        self.seeds, self.prompt_width = seeds, prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        """Scores that put all the mass on each row's seeded draw."""
        token = seeded_pick(scores, self.seeds[: scores.shape[0]], input_ids.shape[1] - self.prompt_width)
        return torch.full_like(scores, float("-inf")).scatter_(1, token[:, None], 0.0)


class HookProcessor(LogitsProcessor):
    """A ``RowHook`` inside ``generate``: every row of a batch is at the same step."""

    def __init__(self, hook: RowHook, seeds: torch.Tensor, prompt_width: int) -> None:
        self.hook, self.seeds, self.prompt_width = hook, seeds, prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        """The hook's scores for this step of every row."""
        seeds = self.seeds[: scores.shape[0]]
        return self.hook(scores, seeds, torch.full_like(seeds, input_ids.shape[1] - self.prompt_width))


class PaddingFreePenalty(RepetitionPenaltyLogitsProcessor):
    """transformers' repetition penalty, with each row's left padding read as its first real token: the
    penalized set is the row's own tokens, so a padded row is drawn as it would be unpadded (the pad token
    is often eos, which the plain processor would penalize in padded rows only)."""

    def __init__(self, penalty: float, pads: Sequence[int]) -> None:
        super().__init__(penalty=penalty)
        self.pads = list(pads)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        """The penalized scores, with each row's padding replaced by its first real token."""
        ids = input_ids.clone()
        for row, pad in enumerate(self.pads[: ids.shape[0]]):
            if pad:
                ids[row, :pad] = ids[row, pad]
        return super().__call__(ids, scores)


def warpers(sampling: SamplingConfig) -> list[LogitsProcessor]:
    """Transformers' temperature / top-k / top-p warpers, in ``generate``'s order (none when greedy)."""
    procs: list[LogitsProcessor] = []
    if sampling.do_sample:
        if sampling.temperature not in (None, 1.0):
            procs.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k:
            procs.append(TopKLogitsWarper(top_k=sampling.top_k))
        if sampling.top_p is not None and sampling.top_p < 1.0:
            procs.append(TopPLogitsWarper(top_p=sampling.top_p))
    return procs


def has_penalty(sampling: SamplingConfig) -> bool:
    """Whether the sampling has a repetition penalty (other than 1)."""
    return sampling.repetition_penalty not in (None, 1.0)


def processors(sampling: SamplingConfig, seeds: torch.Tensor, prompt_width: int, pads: Sequence[int] = (),
               hook: RowHook | None = None) -> LogitsProcessorList:
    """For ``generate``: the hook, the repetition penalty, the warpers, then the seeded sampler."""
    procs: list[LogitsProcessor] = [HookProcessor(hook, seeds, prompt_width)] if hook else []
    if has_penalty(sampling):
        procs.append(PaddingFreePenalty(sampling.repetition_penalty or 1.0, pads))
    procs += warpers(sampling)
    if sampling.do_sample:
        procs.append(SeededSampler(seeds, prompt_width))
    return LogitsProcessorList(procs)
