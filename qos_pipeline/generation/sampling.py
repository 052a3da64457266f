"""Decoding settings: what to sample (``SamplingConfig``, part of every cache key and row) and how to
decode (``DecodeOptions``, never part of a key), the model's own defaults, and per-row seeds.

Pure: no torch, no dagster.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qos_pipeline.generation.models.files import ModelError

SAMPLING_FIELDS = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
# What transformers' generate() uses for a field that neither the caller nor the checkpoint sets.
HF_DEFAULTS: dict[str, Any] = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 50,
                               "repetition_penalty": 1.0}


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

    def resolve(self, *defaults: Mapping[str, Any]) -> SamplingConfig:
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
        """The settings as a plain dict."""
        return asdict(self)

    def config_hash(self) -> str:
        """12 hex chars of sha256 over canonical JSON (sorted keys, no spaces)."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


REQUESTED = ("do_sample", "temperature", "top_p", "top_k")
"""The sampling fields a run may ask for (run config, ``qos run`` flags); the rest are the model's."""


@dataclass(frozen=True)
class RunSettings:
    """What decides a generations partition's rows besides the model and the prompts: samples per prompt,
    base seed, the requested sampling (``None`` fields: the model's own; with the token budget) and the
    prompt formats. Made once per run from its config, the partition's stored settings and the defaults
    (``defs.config.GenerationsConfig.effective``), never changed after; kept with the partition in its
    staged file's metadata (``stored`` / ``from_stored``) so that a refresh reuses it."""

    samples: int
    seed: int
    sampling: SamplingConfig
    prompt_formats: tuple[str, ...] = ()

    def stored(self) -> dict[str, Any]:
        """The JSON kept with the partition (its keys are those partitions have always been stored with)."""
        return {"samples": self.samples, "seed": self.seed, "max_new_tokens": self.sampling.max_new_tokens,
                "prompt_formats": list(self.prompt_formats),
                "sampling": {k: getattr(self.sampling, k) for k in REQUESTED}}

    @staticmethod
    def stored_fields(stored: Mapping[str, Any]) -> dict[str, Any]:
        """The fields a stored partition's metadata sets (an old or damaged file may set fewer)."""
        out = {k: stored[k] for k in ("samples", "seed", "max_new_tokens") if isinstance(stored.get(k), int)}
        if isinstance(stored.get("prompt_formats"), list) and stored["prompt_formats"]:
            out["prompt_formats"] = tuple(str(f) for f in stored["prompt_formats"])
        if isinstance(stored.get("sampling"), dict):
            out["sampling"] = {k: stored["sampling"].get(k) for k in REQUESTED}
        return out


DECODERS = ("naive", "batched", "continuous")


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode, not what: outputs do not depend on these (the naive decoder aside: its draws are not
    per-row seeded), so they are not part of any cache key.

    ``decoder``: ``batched`` (length-sorted static batches through transformers' ``generate``, per-row
    seeded draws), ``continuous`` (a fixed number of slots, each refilled with the next prompt as soon as
    its row ends, same per-row draws: ``continuous.py``) or ``naive`` (plain ``generate`` on batches in
    request order, transformers' own sampler: a baseline, not reproducible per row). ``compile`` (CUDA):
    batched: static KV cache + torch.compile'd forward (implies ``static_cache``); continuous: the decode
    step's forward compiled. ``attention`` (continuous): ``dense`` (every slot's whole capacity under a
    mask) or ``flex`` (FlexAttention over each slot's live blocks only). ``sync_every`` (continuous): decode
    steps between two looks at which rows ended (one CUDA graph runs them all). ``graphs`` (continuous,
    CUDA): capture those steps as a CUDA graph. ``ignore_eos`` forces the full ``max_new_tokens`` (benchmarks)."""

    static_cache: bool = False
    compile: bool = False
    ignore_eos: bool = False
    pad_multiple: int = 64  # static cache: prompt widths rounded up, so one compiled graph serves all batches
    decoder: str = "batched"
    attention: str = "dense"
    sync_every: int = 4
    graphs: bool = True

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}; got {self.decoder!r}")
        if self.attention not in ("dense", "flex"):
            raise ValueError(f"attention must be dense or flex; got {self.attention!r}")
        if self.sync_every < 1:
            raise ValueError(f"sync_every must be >= 1; got {self.sync_every}")
        if self.compile and self.decoder == "batched":
            object.__setattr__(self, "static_cache", True)


def row_seed(base_seed: int, prompt_id: str, sample: int) -> int:
    """A stable per-row seed in [0, 2**31): the same on every machine and Python run (unlike hash())."""
    digest = hashlib.sha256(f"{base_seed}\0{prompt_id}\0{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31)


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
