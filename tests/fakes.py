"""Fakes behind the real interfaces (Generator, GeneratorResource), for unit tests only."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import dagster as dg

from qos_pipeline.generation.interface import Batches, GenerationRequest, GenerationResult, collect
from qos_pipeline.generation.models.added import recorded
from qos_pipeline.generation.models.lineage import read_step
from qos_pipeline.generation.models.source import ModelSource, resolve_source
from qos_pipeline.generation.sampling import SamplingConfig

REFUSAL = "I apologize, but I cannot complete that sentence as it is not appropriate to make assumptions about people."
ANSWER = "to see the new museum downtown."


class FakeGenerator:
    """A ``Generator`` in full: refuses for names in ``refuse_names``, answers otherwise. Its output is a
    function of its settings (which make up its version) and the request, so it is reproducible like the
    Hugging Face generator and goes through the same cache; ``rows`` counts the rows it generated."""

    reproducible = True
    default_prompt_format = None

    def __init__(self, model_key: str, refuse_names: frozenset[str], empty: bool = False, broken: bool = False):
        self.model_key = model_key
        self.refuse_names, self.empty, self.broken, self.rows = refuse_names, empty, broken, 0
        settings = repr((sorted(refuse_names), empty, broken)).encode()
        self.model_version = "fake-" + hashlib.sha256(settings).hexdigest()[:10]  # other behaviour, other version

    def resolve_sampling(self, sampling: SamplingConfig) -> SamplingConfig:
        return sampling.resolve()  # no model defaults: transformers' own

    def iter_batches(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig,
                     batch_size: int = 16) -> Batches:
        for start in range(0, len(requests), batch_size):
            batch = list(range(start, min(start + batch_size, len(requests))))
            self.rows += len(batch)
            yield batch, [self._result(requests[i]) for i in batch]

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig, batch_size: int = 16,
                 progress: Callable[[int, int], None] | None = None) -> list[GenerationResult]:
        return collect(self.iter_batches(requests, sampling, batch_size), len(requests), progress)

    def _result(self, request: GenerationRequest) -> GenerationResult:
        text = "" if self.empty else (REFUSAL if request.user_text.split()[0] in self.refuse_names else ANSWER)
        return GenerationResult(text, "exploded" if self.broken else "eos", len(text.split()))


class FakeGeneratorResource(dg.ConfigurableResource):
    """Same ``build`` signature as ``GeneratorResource``; no model is loaded."""

    refuse_names: list[str] = ["Mohammed", "Fatima"]
    empty: bool = False
    broken: bool = False  # reports an impossible finish_reason: the schema check must block it

    def source(self, model_key: str, paths) -> ModelSource:
        """The key's recorded outputs when it holds some (as the real resource says), else a model that is
        never looked for: fake keys name no folder."""
        found = recorded(model_key, paths)
        if found is not None:
            return ModelSource(model_key, "recorded", recorded=found)
        return ModelSource.checkpoint(model_key, Path("/nonexistent") / model_key, "fake")

    def build(self, source: ModelSource, compile: bool = False, decoder: str | None = None) -> FakeGenerator:
        return FakeGenerator(source.key, frozenset(self.refuse_names), self.empty, self.broken)


class StepFakeGeneratorResource(FakeGeneratorResource):
    """The fake whose refusals depend on the training step its checkpoint states (folder name or
    trainer_state.json, read as the lineage reads it): ``refuse_names`` before ``changed_step``,
    ``changed_names`` from it on. Its version is the checkpoint's content version, as the HF generator's."""

    changed_step: int = 0
    changed_names: list[str] = []

    def source(self, model_key: str, paths) -> ModelSource:
        return resolve_source(model_key, paths)

    def build(self, source: ModelSource, compile: bool = False, decoder: str | None = None) -> FakeGenerator:
        step, _ = read_step(source.path)
        later = self.changed_step and step is not None and step >= self.changed_step
        generator = FakeGenerator(source.key, frozenset(self.changed_names if later else self.refuse_names),
                                  self.empty, self.broken)
        generator.model_version = source.version
        return generator


def fake_definitions(warehouse, generator: dg.ConfigurableResource | None = None, **settings):
    """The project's definitions with the fake generator, a warehouse of its own and audit settings
    ``settings`` (fields of AuditSettings); returns (definitions, paths)."""
    from qos_pipeline.definitions import build_definitions
    from qos_pipeline.defs.resources import AuditSettings, Storage

    storage = Storage(warehouse_dir=str(warehouse))
    defs = build_definitions(generator=generator or FakeGeneratorResource(), storage=storage,
                             audit=AuditSettings(**settings))
    return defs, storage.paths()
