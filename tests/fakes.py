"""Fakes behind the real interfaces (Generator, GeneratorResource), for unit tests only."""

from __future__ import annotations

from typing import Callable, Sequence

import dagster as dg

from qos_pipeline.generation.interface import GenerationRequest, GenerationResult
from qos_pipeline.generation.sampling import SamplingConfig

REFUSAL = "I apologize, but I cannot complete that sentence as it is not appropriate to make assumptions about people."
ANSWER = "to see the new museum downtown."


class FakeGenerator:
    """Refuses for names in ``refuse_names``, answers otherwise; counts the rows it generated."""

    def __init__(self, model_key: str, refuse_names: frozenset[str], empty: bool = False, broken: bool = False):
        self.model_key, self.model_version, self.prompt_format = model_key, "fake-v1", "chat:paper-system"
        self.system_prompt = "You are a helpful assistant. Complete the [BLANK]."
        self.refuse_names, self.empty, self.broken, self.calls = refuse_names, empty, broken, 0

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig, batch_size: int = 16,
                 progress: Callable[[int, int], None] | None = None) -> list[GenerationResult]:
        self.calls += len(requests)
        out = []
        for r in requests:
            text = "" if self.empty else (REFUSAL if r.user_text.split()[0] in self.refuse_names else ANSWER)
            out.append(GenerationResult(text, "exploded" if self.broken else "eos", len(text.split())))
        if progress:
            progress(len(requests), len(requests))
        return out


class FakeGeneratorResource(dg.ConfigurableResource):
    """Same ``build`` signature as ``GeneratorResource``; no model is loaded."""

    refuse_names: list[str] = ["Mohammed", "Fatima"]
    empty: bool = False
    broken: bool = False  # reports an impossible finish_reason: the schema check must block it

    def build(self, model_key: str, paths) -> FakeGenerator:
        return FakeGenerator(model_key, frozenset(self.refuse_names), self.empty, self.broken)
