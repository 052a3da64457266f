"""Loading a checkpoint with transformers: tokenizer for left-padded batches, model on the right devices.

Imported only when a model is actually loaded (it imports torch); errors name the model and what to do.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.registry import ModelSpec

log = logging.getLogger("qos_pipeline.generation")


def load_tokenizer(spec: ModelSpec) -> Any:
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.path)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(
            f"model {spec.key!r}: transformers cannot load the tokenizer in {spec.path} ({exc}); its files are "
            "there but unusable (another model's tokenizer, or a newer format than this transformers reads): "
            "re-save the base model's tokenizer there (tokenizer.save_pretrained)") from exc
    tokenizer.padding_side = "left"  # decoder-only: new tokens must follow every prompt directly
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"model {spec.key!r}: tokenizer has neither pad nor eos token; set one and re-save")
        tokenizer.pad_token = tokenizer.eos_token  # Llama-style tokenizers ship without one
    return tokenizer


def load_kwargs(device: str, dtype: str | None, gpus: int) -> dict[str, Any]:
    """from_pretrained arguments: bf16 (or the registry's dtype) + SDPA on CUDA, spread over all GPUs
    when several are visible; float32 on CPU, where half-precision matmuls are slow and less exact."""
    if not device.startswith("cuda"):
        return {"dtype": torch.float32}
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype or "bfloat16"), "attn_implementation": "sdpa"}
    if gpus > 1 and device == "cuda":
        kwargs["device_map"] = "auto"  # a 70B model fits no single GPU
    return kwargs


def load_model(spec: ModelSpec, device: str | None, tokenizer: Any) -> tuple[Any, frozenset[int], int | None]:
    """The model in eval mode, its eos ids, and its usable context (registry max_context or config)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    kwargs = load_kwargs(device, spec.dtype, gpus)
    try:
        model = AutoModelForCausalLM.from_pretrained(spec.path, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            raise ModelError(f"model {spec.key!r} does not fit in GPU memory ({exc}); make more GPUs visible "
                             "or pick a smaller dtype in assets/models.yaml") from exc
        raise ModelError(f"model {spec.key!r}: cannot load weights from {spec.path} ({exc}); the folder may "
                         "be half-written: re-save the checkpoint (save_pretrained)") from exc
    if "device_map" not in kwargs:
        model = model.to(device)
    model.eval()
    log.info("loaded %s on %s (%s)", spec.key, getattr(model, "hf_device_map", device), model.dtype)
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    # A clean generation_config: transformers would otherwise merge the checkpoint's extras (repetition
    # penalty, top_k, ...) into every call; the model's sampling defaults were already resolved into the
    # recorded gen_config (SamplingConfig.resolve) and are applied by qos_pipeline.decoding.
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=sorted(eos_ids) or None,
        pad_token_id=tokenizer.pad_token_id)
    context = spec.max_context or getattr(model.config, "max_position_embeddings", None)
    return model, frozenset(eos_ids), context
