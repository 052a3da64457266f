"""The generator interface: one request per row to generate, one result per request.

Every implementation (the Hugging Face generator, the test fake) implements ``Generator`` in full, so the
stage code calls the same methods whichever is plugged in. Pure: no torch, no dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from qos_pipeline.generation.formats import PAPER_FORMAT, PromptFormat
from qos_pipeline.generation.sampling import SamplingConfig

SYSTEM_PROMPT = PAPER_FORMAT.system
"""The system prompt of Chehbouni et al. (2024)."""


@dataclass(frozen=True)
class GenerationRequest:
    """One row to generate: sample ``sample`` (0-based) of prompt ``prompt_id`` under ``prompt_format``."""

    prompt_id: str
    sample: int
    user_text: str
    seed: int
    prompt_format: PromptFormat = field(default=PAPER_FORMAT)


@dataclass(frozen=True)
class GenerationResult:
    """One response: its text, why it ended (``eos`` or ``length``) and its number of new tokens."""

    response: str
    finish_reason: str  # "eos" | "length"
    n_new_tokens: int


Batches = Iterator[tuple[list[int], list[GenerationResult]]]
"""``(indices into the requests, their results)``, batch by batch, as soon as each batch is done."""


@runtime_checkable
class Generator(Protocol):
    """Turns requests into responses. Every implementation (the Hugging Face generator, the test fakes)
    provides all of it, so the stage code makes the same calls whichever is plugged in.

    ``model_key`` and ``model_version`` go into every row. ``default_prompt_format``: the model's own
    condition (registry), None for the formats file's default. ``reproducible``: a row is a function of
    (model version, prompt, format, effective sampling, seed), so stored rows may be reused and runs resumed.
    """

    model_key: str
    model_version: str
    default_prompt_format: str | None
    reproducible: bool

    def resolve_sampling(self, sampling: SamplingConfig) -> SamplingConfig:
        """The effective settings: run config, else the model's own defaults, else transformers'."""
        ...

    def iter_batches(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig,
                     batch_size: int = 16) -> Batches:
        """Generate in batches of at most ``batch_size``; every request index appears exactly once."""
        ...

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig, batch_size: int = 16,
                 progress: Callable[[int, int], None] | None = None) -> list[GenerationResult]:
        """Results in the order of ``requests``; ``progress(done, total)`` after each batch."""
        ...


def collect(batches: Batches, total: int, progress: Callable[[int, int], None] | None = None
            ) -> list[GenerationResult]:
    """``Generator.generate`` on top of ``iter_batches``: the results in request order."""
    results: dict[int, GenerationResult] = {}
    for indices, outputs in batches:
        results.update(zip(indices, outputs))
        if progress is not None:
            progress(len(results), total)
    return [results[i] for i in range(total)]
