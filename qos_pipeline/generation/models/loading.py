"""Loading a checkpoint with transformers: one tokenizer and one model of a given class, on the right devices.

Imported only when a model is actually loaded (it imports torch); callers go through
``qos_pipeline.generation.models.loaded``, which checks the folder first and keeps what was loaded. Every
error is a one-line ``ModelError`` naming the model and what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoTokenizer, GenerationConfig

from qos_pipeline.generation.models.files import ModelError

log = logging.getLogger("qos_pipeline.generation")

CLASSES = {"causal": "AutoModelForCausalLM", "classifier": "AutoModelForSequenceClassification", "base": "AutoModel"}
"""What a model is loaded as: a causal LM (generation, the llm judge), a sequence classifier (toxicity), or the
base model without a head (hidden states for the learned judge's features)."""


def first_line(exc: BaseException) -> str:
    """An exception as one line: transformers' messages often run over several."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_tokenizer(folder: Path, name: str, padding_side: str | None = "left") -> Any:
    """The folder's tokenizer, with a pad token (eos, else unk, where it ships none: Llama-style tokenizers
    do) and ``padding_side`` (left for decoder-only batches, where new tokens must follow every prompt
    directly; None: as saved)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(
            f"model {name!r}: transformers cannot load the tokenizer in {folder} ({first_line(exc)}); its files "
            "are there but unusable (another model's tokenizer, or a newer format than this transformers reads): "
            "re-save the base model's tokenizer there (tokenizer.save_pretrained)") from exc
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ModelError(f"model {name!r}: its tokenizer has no pad, eos or unk token; set a pad token "
                             "(tokenizer.pad_token = ...) and re-save it with save_pretrained")
        tokenizer.pad_token = fallback
    return tokenizer


def resolve_device(device: str | None) -> str:
    """``device`` as given, else CUDA when present, else CPU."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(device: str, dtype: str | None) -> str:
    """float32 on CPU, where half-precision matmuls are slow and less exact (what ``assets/models.yaml``
    documents); on CUDA the dtype asked for (``auto``: the checkpoint's), else bfloat16."""
    return "float32" if device == "cpu" else dtype or "bfloat16"


def load_kwargs(device: str, dtype: str, gpus: int) -> dict[str, Any]:
    """from_pretrained arguments. ``device`` ``auto``: spread by accelerate over the GPUs (then CPU memory);
    plain ``cuda`` with several GPUs visible is spread too (a 70B model fits no single GPU); SDPA on CUDA."""
    kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype),
                              "trust_remote_code": False}  # never run code from a folder (files.py refuses it)
    if device != "cpu":
        kwargs["attn_implementation"] = "sdpa"
    if device == "auto" or (device == "cuda" and gpus > 1):
        kwargs["device_map"] = "auto"
    return kwargs


def load_weights(folder: Path, name: str, kind: str, dtype: str, device: str) -> Any:
    """The model in eval mode, as class ``kind`` (``CLASSES``), on ``device``; refused when the folder lacks
    weights of that class (a causal LM loaded as a classifier would get a random head)."""
    if kind not in CLASSES:
        raise ValueError(f"model class {kind!r} unknown; use one of {', '.join(CLASSES)}")
    gpus = torch.cuda.device_count() if device != "cpu" else 0
    kwargs = load_kwargs(device, dtype, gpus)
    try:
        model, info = getattr(transformers, CLASSES[kind]).from_pretrained(folder, output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, torch.OutOfMemoryError):
            raise  # the cache (loaded.py) frees the other models and tries again
        raise ModelError(f"model {name!r}: cannot load it as a {CLASSES[kind]} from {folder} ({first_line(exc)}); "
                         "the folder may be half-written or of another architecture: re-save the checkpoint "
                         "(save_pretrained)") from exc
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ModelError(f"model {name!r}: {folder} holds no weights for {', '.join(missing[:3])} of a "
                         f"{type(model).__name__} (it is a {', '.join(model.config.architectures or ['?'])}), so "
                         "they would be random; use a checkpoint of that kind")
    if "device_map" not in kwargs:
        model = model.to(device)
    model.eval()
    log.info("loaded %s (%s) on %s (%s)", name, kind, getattr(model, "hf_device_map", device), model.dtype)
    return model


def settle(model: Any, kind: str, tokenizer: Any) -> None:
    """Settings every user of the model shares, set once at load so none depends on who loaded it first.

    Causal LM: a clean ``generation_config`` (eos of the checkpoint and of the tokenizer, pad, bos):
    transformers would otherwise merge the checkpoint's extras (repetition penalty, top_k, ...) into every
    ``generate`` call; the model's sampling defaults are resolved into the recorded gen_config
    (SamplingConfig.resolve) and applied by qos_pipeline.decoding. Classifier: its pad token id, by which a
    decoder-only classifier finds each row's last real token.
    """
    if kind == "classifier" and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if kind != "causal":
        return
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=sorted(eos_ids) or None,
        pad_token_id=tokenizer.pad_token_id)


def eos_ids(model: Any) -> frozenset[int]:
    """The ids that end a generation (as ``settle`` set them)."""
    eos = model.generation_config.eos_token_id
    return frozenset(eos if isinstance(eos, list) else [eos] if eos is not None else [])


def free_accelerator_memory() -> None:
    """Give the CUDA caching allocator's free blocks back, so an evicted model's memory is usable by the next."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
