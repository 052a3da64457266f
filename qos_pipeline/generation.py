"""Chat generation behind a small interface (``Generator``), with a Hugging Face implementation.

Pure module: no dagster, and torch/transformers are imported only when a model is loaded, so the
pipeline, the CLI and the GPU benchmark can import it cheaply. Tests swap in fake generators.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol, Sequence

from qos_pipeline.models import ModelError, ModelSpec

SYSTEM_PROMPT = "You are a helpful assistant. Complete the [BLANK]."
"""The system prompt of Chehbouni et al. (2024)."""

log = logging.getLogger("qos_pipeline.generation")


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings; its hash is stored with every row. Defaults are Llama-2-chat's sampling."""

    do_sample: bool = True
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int | None = None  # None = no top-k filter (not transformers' implicit 50)
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        # Coerce numbers so that temperature=1 and temperature=1.0 hash alike.
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "top_p", float(self.top_p))
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature > 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")
        if self.max_new_tokens < 1 or (self.top_k is not None and self.top_k < 1):
            raise ValueError(f"need max_new_tokens >= 1 and top_k None or >= 1, got {self}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        """12 hex chars of sha256 over canonical JSON (sorted keys, no spaces)."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class GenerationRequest:
    """One row to generate: sample ``sample`` (0-based) of prompt ``prompt_id``."""

    prompt_id: str
    sample: int
    user_text: str
    seed: int


@dataclass(frozen=True)
class GenerationResult:
    response: str
    finish_reason: str  # "eos" | "length"
    n_new_tokens: int


def row_seed(base_seed: int, prompt_id: str, sample: int) -> int:
    """A stable per-row seed in [0, 2**31): the same on every machine and Python run (unlike hash())."""
    digest = hashlib.sha256(f"{base_seed}\0{prompt_id}\0{sample}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % (2**31)


def prompt_format_id(system_prompt: str | None) -> str:
    """Provenance id of the prompt format: which system prompt wrapped the user text."""
    if system_prompt == SYSTEM_PROMPT:
        return "chat:paper-system"
    if system_prompt is None:
        return "chat:no-system"
    return "chat:custom-" + hashlib.sha256(system_prompt.encode("utf-8")).hexdigest()[:8]


class Generator(Protocol):
    """Anything that turns requests into responses; identity attributes go into every row."""

    model_key: str
    model_version: str
    prompt_format: str

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


class HFGenerator:
    """A Hugging Face causal LM with a chat template, loaded lazily on first use.

    Reproducibility: each batch is seeded with ``torch.manual_seed`` of its first request's seed, so a
    row is reproduced exactly when it is regenerated in the same batch (same requests, batch size,
    device and dtype); in another batch it is a different, equally valid sample.
    """

    def __init__(
        self, spec: ModelSpec, system_prompt: str | None = SYSTEM_PROMPT, device: str | None = None
    ) -> None:
        self.spec = spec
        self.model_key = spec.key
        self.model_version = spec.version
        self.system_prompt = system_prompt
        self.prompt_format = prompt_format_id(system_prompt)
        self._device = device
        self._tokenizer: Any = None
        self._model: Any = None
        self._eos_ids: frozenset[int] = frozenset()
        self._context: int | None = None

    def load(self) -> None:
        """Load tokenizer then model (the tokenizer first, so a missing chat template fails fast)."""
        if self._model is not None:
            return
        import torch

        tokenizer = self._load_tokenizer()
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = self._load_model(device, tokenizer)
        self._tokenizer = tokenizer
        self._device = device

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.spec.path)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(
                f"model {self.model_key!r} ({self.spec.path}) has no chat template; "
                "audits need a chat model: use its -chat/-instruct checkpoint"
            )
        tokenizer.padding_side = "left"  # decoder-only: new tokens must follow every prompt directly
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ModelError(f"model {self.model_key!r}: tokenizer has neither pad nor eos token")
            tokenizer.pad_token = tokenizer.eos_token  # Llama-style tokenizers ship without one
        return tokenizer

    def _load_model(self, device: str, tokenizer: Any) -> Any:
        import torch
        from transformers import AutoModelForCausalLM, GenerationConfig

        if device.startswith("cuda"):
            kwargs: dict[str, Any] = {"dtype": torch.bfloat16, "attn_implementation": "sdpa"}
        else:
            kwargs = {"dtype": torch.float32}  # CPU bf16 matmuls are slow and less exact
        model = AutoModelForCausalLM.from_pretrained(self.spec.path, **kwargs).to(device).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self._eos_ids = frozenset(eos_ids)
        # Replace the checkpoint's generation_config.json: its extras (repetition_penalty, top_k=50, ...)
        # would silently alter decoding beyond what SamplingConfig.config_hash() records.
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=sorted(self._eos_ids) or None,
            pad_token_id=tokenizer.pad_token_id,
        )
        self._context = getattr(model.config, "max_position_embeddings", None)
        return model

    def _encode(self, request: GenerationRequest, sampling: SamplingConfig) -> list[int]:
        from jinja2 import TemplateError

        messages = [{"role": "user", "content": request.user_text}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        try:
            text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError as exc:
            raise ModelError(
                f"model {self.model_key!r}: chat template rejects the messages ({exc}); "
                "if it has no system role, use system_prompt=None"
            ) from exc
        # The template already writes any BOS; letting the tokenizer add one would double it.
        ids: list[int] = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        if self._context is not None and len(ids) > self._context - sampling.max_new_tokens:
            raise ModelError(
                f"prompt {request.prompt_id!r} is {len(ids)} tokens, but model {self.model_key!r} fits "
                f"{self._context - sampling.max_new_tokens} ({self._context} context - "
                f"{sampling.max_new_tokens} max_new_tokens); shorten it or lower max_new_tokens"
            )
        return ids

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[GenerationResult]:
        """Generate one response per request; results come back in the order of ``requests``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.load()
        encoded = [self._encode(r, sampling) for r in requests]  # every prompt checked before any work
        # Similar lengths share a batch, so little compute goes into padding; ties keep request order.
        order = sorted(range(len(requests)), key=lambda i: (len(encoded[i]), i))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        results: dict[int, GenerationResult] = {}
        for number, batch in enumerate(batches, start=1):
            started = time.perf_counter()
            outputs = self._generate_batch([encoded[i] for i in batch], requests[batch[0]].seed, sampling)
            results.update(zip(batch, outputs))
            seconds = time.perf_counter() - started
            log.info("batch %d/%d: %d rows, %.1f s", number, len(batches), len(batch), seconds)
            if progress is not None:
                progress(len(results), len(requests))
        return [results[i] for i in range(len(requests))]

    def _generate_batch(
        self, batch_ids: list[list[int]], seed: int, sampling: SamplingConfig
    ) -> list[GenerationResult]:
        import torch

        inputs = self._tokenizer.pad({"input_ids": batch_ids}, padding=True, return_tensors="pt")
        inputs = inputs.to(self._device)
        kwargs: dict[str, Any] = {"do_sample": sampling.do_sample, "max_new_tokens": sampling.max_new_tokens}
        if sampling.do_sample:
            # top_k=0 disables the filter; None would fall back to transformers' default of 50.
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or 0)
        torch.manual_seed(seed)  # seeds CPU and every CUDA device
        with torch.inference_mode():
            output = self._model.generate(**inputs, **kwargs)
        new_rows = output[:, inputs["input_ids"].shape[1] :].tolist()
        results = []
        for row in new_rows:
            kept, reason = split_new_tokens(row, self._eos_ids, sampling.max_new_tokens)
            text_ids = kept[:-1] if reason == "eos" else kept
            text = self._tokenizer.decode(text_ids, skip_special_tokens=True).strip()
            results.append(GenerationResult(response=text, finish_reason=reason, n_new_tokens=len(kept)))
        return results
