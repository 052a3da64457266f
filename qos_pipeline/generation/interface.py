"""The generator interface: one request per row to generate, one result per request.

Every implementation (the Hugging Face generator, the test fake) implements ``Generator`` in full, so the
stage code calls the same methods whichever is plugged in. Pure: no torch, no dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

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
    response: str
    finish_reason: str  # "eos" | "length"
    n_new_tokens: int


class Generator(Protocol):
    """Anything that turns requests into responses; identity attributes go into every row.

    Optional, used when present: ``reproducible = True`` (a row is a function of model version, prompt,
    format, effective sampling and seed, so stored rows may be reused and runs resumed),
    ``resolve_sampling(sampling)``, ``iter_batches(requests, sampling, batch_size)`` yielding
    ``(indices, results)`` per batch, and ``default_prompt_format`` (the registry's condition).
    """

    model_key: str
    model_version: str

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[GenerationResult]:
        """Results in the order of ``requests``; ``progress(done, total)`` after each batch."""
        ...
