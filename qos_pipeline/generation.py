"""Chat generation behind a small interface (``Generator``), with a Hugging Face implementation.

Pure module: no dagster, and torch/transformers are imported only when a model is loaded, so the
pipeline, the CLI and the GPU benchmark can import it cheaply. Tests swap in fake generators. The decoding
engine (batching, seeded sampling, static cache, out-of-memory back-off) is ``qos_pipeline.decoding``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from qos_pipeline.models import ModelError, ModelSpec
from qos_pipeline.prompt_formats import PAPER_FORMAT, PromptFormat

SYSTEM_PROMPT = PAPER_FORMAT.system
"""The system prompt of Chehbouni et al. (2024)."""

SAMPLING_FIELDS = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
# What transformers' generate() uses for a field that neither the caller nor the checkpoint sets.
HF_DEFAULTS: dict[str, Any] = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 50,
                               "repetition_penalty": 1.0}

log = logging.getLogger("qos_pipeline.generation")


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings. ``None`` = the model's own default; ``resolve`` fills them in, and the resolved
    (effective) settings are what every row records (``gen_config``) and hashes (``gen_config_hash``)."""

    do_sample: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # 0 = no top-k filter
    repetition_penalty: float | None = None
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        # Coerce numbers so that temperature=1 and temperature=1.0 hash alike.
        for name in ("temperature", "top_p", "repetition_penalty"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        bad = [
            self.temperature is not None and self.temperature <= 0,
            self.top_p is not None and not 0 < self.top_p <= 1,
            self.top_k is not None and self.top_k < 0,
            self.repetition_penalty is not None and self.repetition_penalty <= 0,
            self.max_new_tokens < 1,
        ]
        if any(bad):
            raise ValueError(f"need temperature > 0, 0 < top_p <= 1, top_k >= 0, repetition_penalty > 0 and "
                             f"max_new_tokens >= 1; got {self}")

    def resolve(self, *defaults: Mapping[str, Any]) -> "SamplingConfig":
        """Effective settings: own values, else the first of ``defaults`` that sets one, else HF_DEFAULTS."""
        values = {}
        for name in SAMPLING_FIELDS:
            candidates = [getattr(self, name), *(d.get(name) for d in defaults), HF_DEFAULTS[name]]
            values[name] = next(v for v in candidates if v is not None)
        if not values["do_sample"]:
            # Greedy ignores these; dropping them gives every greedy run of a model one hash.
            values.update(temperature=None, top_p=None, top_k=None)
        return SamplingConfig(**values, max_new_tokens=self.max_new_tokens)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        """12 hex chars of sha256 over canonical JSON (sorted keys, no spaces)."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode, not what: outputs do not depend on these, so they are not part of any cache key.

    ``compile`` (static KV cache + torch.compile'd forward) pays off on CUDA only and implies
    ``static_cache``; ``ignore_eos`` forces the full ``max_new_tokens`` (benchmarks)."""

    static_cache: bool = False
    compile: bool = False
    ignore_eos: bool = False
    pad_multiple: int = 64  # static cache: prompt widths rounded up, so one compiled graph serves all batches

    def __post_init__(self) -> None:
        if self.compile:
            object.__setattr__(self, "static_cache", True)


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


def row_seed(base_seed: int, prompt_id: str, sample: int) -> int:
    """A stable per-row seed in [0, 2**31): the same on every machine and Python run (unlike hash())."""
    digest = hashlib.sha256(f"{base_seed}\0{prompt_id}\0{sample}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % (2**31)


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


def split_new_tokens(
    new_ids: Sequence[int], eos_ids: frozenset[int], max_new_tokens: int
) -> tuple[list[int], str]:
    """Cut generated ids after the first eos (kept, so it is counted); say why generation stopped.

    Everything after the first eos is padding added while other rows of the batch kept going.
    """
    for pos, token in enumerate(new_ids[:max_new_tokens]):
        if token in eos_ids:
            return list(new_ids[: pos + 1]), "eos"
    return list(new_ids[:max_new_tokens]), "length"


def checkpoint_sampling(folder: Path) -> dict[str, Any]:
    """The sampling fields a checkpoint's ``generation_config.json`` sets (read without transformers)."""
    file = Path(folder) / "generation_config.json"
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(f"{file} is not valid JSON ({exc}); fix or delete it") from exc
    return {k: data[k] for k in SAMPLING_FIELDS if data.get(k) is not None}


class HFGenerator:
    """A Hugging Face causal LM, loaded lazily on first use; prompts wrapped per request's format.

    Reproducibility: every row is sampled with its own seed, independently of the other rows in its batch
    (see ``qos_pipeline.decoding``), so any row can be regenerated alone, in any batch, on resume.
    """

    reproducible = True

    def __init__(self, spec: ModelSpec, device: str | None = None, options: DecodeOptions | None = None) -> None:
        self.spec = spec
        self.model_key = spec.key
        self.model_version = spec.version
        self.default_prompt_format = spec.prompt_format
        self.options = options or DecodeOptions()
        self._device = device
        self._tokenizer: Any = None
        self._model: Any = None
        self._eos_ids: frozenset[int] = frozenset()
        self._context: int | None = None

    def resolve_sampling(self, sampling: SamplingConfig) -> SamplingConfig:
        """Run config, else the registry's ``sampling:``, else the checkpoint's generation_config.json."""
        return sampling.resolve(self.spec.sampling, checkpoint_sampling(self.spec.path))

    def load(self) -> None:
        """Load tokenizer then model (the cheap part first, so a broken folder fails fast)."""
        if self._model is not None:
            return
        from qos_pipeline.hf_loading import load_model, load_tokenizer

        tokenizer = load_tokenizer(self.spec)
        self._model, self._eos_ids, self._context = load_model(self.spec, self._device, tokenizer)
        self._tokenizer = tokenizer
        if self.options.compile and self._model.device.type != "cuda":
            # transformers compiles only on accelerators; a static cache alone would just cost memory here.
            log.info("%s: compile needs CUDA; decoding on %s without it", self.model_key, self._model.device)
            self.options = DecodeOptions(ignore_eos=self.options.ignore_eos)

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
    ) -> Iterator[tuple[list[int], list[GenerationResult]]]:
        """Yield ``(request indices, results)`` batch by batch, as soon as each batch is done."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.load()
        from qos_pipeline.decoding import BatchOOMError, run_batches

        sampling = self.resolve_sampling(sampling)
        encoded = [self._encode(r, sampling.max_new_tokens) for r in requests]  # all checked before any work
        batches = run_batches(self._model, encoded, [r.seed for r in requests], sampling, batch_size,
                              self._tokenizer.pad_token_id, self._eos_ids, self.options)
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
        results: dict[int, GenerationResult] = {}
        for indices, outputs in self.iter_batches(requests, sampling, batch_size):
            results.update(zip(indices, outputs))
            if progress is not None:
                progress(len(results), len(requests))
        return [results[i] for i in range(len(requests))]
