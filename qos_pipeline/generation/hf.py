"""Chat generation with a Hugging Face causal LM (``HFGenerator``, a ``Generator``).

torch/transformers are imported only when a model is loaded, so the pipeline, the CLI and the GPU
benchmark import this module cheaply. The decoders (``DecodeOptions.decoder``): ``batched`` and ``naive``
in ``qos_pipeline.generation.decoding``, ``continuous`` in ``qos_pipeline.generation.continuous``; per-row
seeded draws in ``draws``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from qos_pipeline.generation.interface import Batches, GenerationRequest, GenerationResult, collect
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.registry import ModelSpec
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig, checkpoint_sampling

log = logging.getLogger("qos_pipeline.generation")


class HFGenerator:
    """A Hugging Face causal LM, loaded lazily on first use; prompts wrapped per request's format.

    Reproducibility: every row is sampled with its own seed, independently of the other rows in its batch
    (see ``qos_pipeline.generation.draws``), so any row can be regenerated alone, in any batch, on resume,
    by the batched or the continuous decoder alike; not by the ``naive`` baseline (``reproducible`` False).
    """

    def __init__(self, spec: ModelSpec, device: str | None = None, options: DecodeOptions | None = None) -> None:
        self.spec = spec
        self.model_key = spec.key
        self.model_version = spec.version
        self.default_prompt_format = spec.prompt_format
        self.options = options or DecodeOptions()
        self.reproducible = self.options.decoder != "naive"
        self._device = device
        self._tokenizer: Any = None
        self._model: Any = None
        self._eos_ids: frozenset[int] = frozenset()
        self._context: int | None = None
        self._engines: dict = {}  # the continuous decoder's slot cache and CUDA graph, reused across calls

    def resolve_sampling(self, sampling: SamplingConfig) -> SamplingConfig:
        """Run config, else the registry's ``sampling:``, else the checkpoint's generation_config.json."""
        return sampling.resolve(self.spec.sampling, checkpoint_sampling(self.spec.path))

    def load(self) -> None:
        """Load tokenizer then model (the cheap part first, so a broken folder fails fast)."""
        if self._model is not None:
            return
        from qos_pipeline.generation.models.loaded import load, load_tokenizer
        from qos_pipeline.generation.models.loading import eos_ids

        tokenizer = load_tokenizer(self.spec.path, self.spec.key)
        loaded = load(self.spec.path, self.spec.key, version=self.spec.version, dtype=self.spec.dtype,
                      device=self._device)
        self._model, self._eos_ids = loaded.model, eos_ids(loaded.model)
        self._context = self.spec.max_context or getattr(loaded.model.config, "max_position_embeddings", None)
        self._engines = loaded.memo("continuous decoder engines", dict)  # shared by generators of this model
        self._tokenizer = tokenizer
        if self.options.compile and self._model.device.type != "cuda":
            # transformers compiles only on accelerators; a static cache alone would just cost memory here.
            log.info("%s: compile needs CUDA; decoding on %s without it", self.model_key, self._model.device)
            self.options = dataclasses.replace(self.options, compile=False, static_cache=False)

    def _encode(self, request: GenerationRequest, max_new_tokens: int) -> list[int]:
        fmt = request.prompt_format
        text = fmt.render(self._tokenizer, request.user_text, self.model_key)
        ids: list[int] = self._tokenizer(text, add_special_tokens=fmt.add_special_tokens)["input_ids"]
        if self._context is not None and len(ids) > self._context - max_new_tokens:
            raise ModelError(
                f"prompt {request.prompt_id!r} under format {fmt.id!r} is {len(ids)} tokens, but model "
                f"{self.model_key!r} fits {self._context - max_new_tokens} ({self._context} context - "
                f"{max_new_tokens} max_new_tokens); shorten it or lower max_new_tokens")
        return ids

    def iter_batches(
        self, requests: Sequence[GenerationRequest], sampling: SamplingConfig, batch_size: int = 16
    ) -> Batches:
        """Yield ``(request indices, results)`` batch by batch, as soon as each batch is done."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.load()
        from qos_pipeline.generation.continuous import run_continuous
        from qos_pipeline.generation.decoding import BatchOOMError, Output, naive_batches, run_batches

        decoders: dict[str, Callable[..., Iterator[tuple[list[int], list[Output]]]]] = {
            "naive": naive_batches, "batched": run_batches, "continuous": run_continuous}
        decode = decoders[self.options.decoder]
        sampling = self.resolve_sampling(sampling)
        encoded = [self._encode(r, sampling.max_new_tokens) for r in requests]  # all checked before any work
        extra = {"engines": self._engines} if self.options.decoder == "continuous" else {}
        batches = decode(self._model, encoded, [r.seed for r in requests], sampling, batch_size,
                         self._tokenizer.pad_token_id, self._eos_ids, self.options, **extra)
        try:
            for indices, outputs in batches:
                yield indices, [self._result(ids, reason) for ids, reason in outputs]
        except BatchOOMError as exc:
            raise ModelError(
                f"model {self.model_key!r}: CUDA out of memory even one prompt at a time ({exc}); lower "
                "max_new_tokens, free the GPU, or make more GPUs visible (the model is then spread over them)"
            ) from exc

    def _result(self, ids: list[int], reason: str) -> GenerationResult:
        text_ids = ids[:-1] if reason == "eos" else ids
        text = self._tokenizer.decode(text_ids, skip_special_tokens=True).strip()
        return GenerationResult(response=text, finish_reason=reason, n_new_tokens=len(ids))

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[GenerationResult]:
        """Generate one response per request; results come back in the order of ``requests``."""
        return collect(self.iter_batches(requests, sampling, batch_size), len(requests), progress)
