"""``ForcedStops``: a ``draws.RowHook`` that ends each row at a length of its own, keyed by its seed.

A random-weight model stops at random; the generation benchmark needs rows that stop where real
responses stop. With this hook a row (found by its seed) cannot draw eos before its length L, and must
draw it at step L: it yields exactly L tokens, then eos. Rows whose seed is not listed are untouched.
Being keyed by seed, not by batch position, it gives a row the same length under every decoder, batch
size and batch composition. Graph-safe: no host synchronization once its tables are on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

NO_STOP = 2**62


class ForcedStops:
    """Row with seed ``seeds[i]`` stops after ``lengths[i]`` tokens, by drawing ``eos_id``."""

    def __init__(self, seeds: Sequence[int], lengths: Sequence[int], eos_id: int) -> None:
        if len(seeds) != len(lengths) or len(set(seeds)) != len(seeds):
            raise ValueError("ForcedStops needs one length per seed, and distinct seeds")
        order = sorted(range(len(seeds)), key=lambda i: seeds[i])
        self.keys = torch.tensor([seeds[i] for i in order] or [NO_STOP], dtype=torch.long)
        self.lengths = torch.tensor([lengths[i] for i in order] or [NO_STOP], dtype=torch.long)
        self.eos_id = eos_id
        self._on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def length_of(self, seeds: torch.Tensor) -> torch.Tensor:
        """Each row's forced length (NO_STOP where its seed is not listed)."""
        if seeds.device not in self._on:  # moved once, before any CUDA graph capture (warm-up runs first)
            self._on[seeds.device] = (self.keys.to(seeds.device), self.lengths.to(seeds.device))
        keys, lengths = self._on[seeds.device]
        at = torch.searchsorted(keys, seeds).clamp(max=keys.numel() - 1)
        return torch.where(keys[at] == seeds, lengths[at], torch.full_like(seeds, NO_STOP))

    def lengths_in(self, seeds: Sequence[int]) -> list[int]:
        """The forced lengths of ``seeds`` as a list."""
        return self.length_of(torch.tensor(list(seeds), dtype=torch.long)).tolist()

    def __call__(self, scores: torch.Tensor, seeds: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """The scores, with eos forced at the step where a row's forced length ends."""
        length = self.length_of(seeds)
        eos = torch.zeros_like(scores[0], dtype=torch.bool)
        eos[self.eos_id] = True
        stop = (steps >= length)[:, None]
        must = torch.where(eos, 0.0, float("-inf")).to(scores.dtype).expand_as(scores)
        banned = torch.where((length < NO_STOP)[:, None], scores.masked_fill(eos, float("-inf")), scores)
        return torch.where(stop, must, banned)
