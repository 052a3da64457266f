"""Pretrained representations for the learned judge: mean-pooled hidden states of a local Hugging Face
causal LM (the embedded SmolLM2 or any checkpoint folder), as a scikit-learn transformer.

Only the first ``layer`` transformer blocks run (a middle layer carries what a linear probe needs,
and the blocks above it would only cost time), on at most ``max_tokens`` tokens of each text (refusal
and stereotype wording sits early in a response). Vectors are cached per text under ``cache_dir``
(one ``.npz`` per model version x layer x token budget), so cross-validation folds, retraining and
judging the same responses again cost no forward pass. A stored judge keeps only these parameters, not the
model; it loads it again on first use. torch/transformers are imported lazily.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


PARAMS = ("model_path", "model_version", "layer", "max_tokens", "batch_size", "cache_dir")


def first_blocks(base: Any, layer: int, where: str) -> Any:
    """A view of the base model ``base`` that runs only its first ``layer`` blocks (then its final norm).

    It shares every weight with ``base`` (nothing is copied) and leaves ``base`` whole, so the loaded model
    stays usable by others: a shallow copy with its own table of sub-modules, whose block list is cut.
    """
    import copy

    blocks = getattr(base, "layers", None)
    if blocks is None:
        raise ValueError(f"{where} is a {type(base).__name__}, which keeps no list of decoder blocks (.layers); "
                         "use a Llama-style decoder for lm features")
    if not 1 <= layer <= len(blocks):
        raise ValueError(f"layer {layer} of {where}: it has {len(blocks)} blocks; use 1-{len(blocks)}")
    view = copy.copy(base)
    view._modules = dict(base._modules)  # else setting .layers below would cut the shared model's too
    view.layers = blocks[:layer]  # the blocks above are never needed
    return view


class HiddenStates:
    """Texts -> mean of the hidden states after block ``layer`` (attention-masked), float32. A scikit-learn
    transformer by its methods (fit, transform, get_params), so importing this module needs no sklearn."""

    def __init__(self, model_path: str = "", model_version: str = "", layer: int = 12, max_tokens: int = 64,
                 batch_size: int = 16, cache_dir: str | None = None) -> None:
        self.model_path, self.model_version, self.layer = model_path, model_version, layer
        self.max_tokens, self.batch_size, self.cache_dir = max_tokens, batch_size, cache_dir

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (scikit-learn's estimator interface)."""
        return {k: getattr(self, k) for k in PARAMS}

    def set_params(self, **params: Any) -> HiddenStates:
        """Set parameters (scikit-learn's estimator interface)."""
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, texts: Sequence[str], y: Any = None) -> HiddenStates:
        """Nothing to fit: the features come from a fixed model."""
        return self

    def fit_transform(self, texts: Sequence[str], y: Any = None) -> np.ndarray:
        """Same as ``transform`` (nothing to fit)."""
        return self.transform(texts)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """The features of ``texts``, read from the cache where stored, else computed (and cached)."""
        texts = [str(t) for t in texts]
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:20] for t in texts]
        cache = self._read_cache()
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in cache}.items(), key=lambda kt: len(kt[1]))
        if todo:
            log.info("embedding %d new texts with %s (layer %d)", len(todo), self.model_path, self.layer)
            for start in range(0, len(todo), self.batch_size):  # similar lengths together: little padding
                chunk = todo[start:start + self.batch_size]
                cache.update(zip((k for k, _ in chunk), self._embed([t for _, t in chunk])))
            self._write_cache(cache)
        return np.stack([cache[k] for k in keys]).astype(np.float32)

    def _load(self) -> tuple[Any, Any]:
        if getattr(self, "_model", None) is None:
            from qos_pipeline.generation.models.loaded import load, load_tokenizer

            name = Path(self.model_path).name
            tok = load_tokenizer(self.model_path, name, padding_side="right")
            # float32 on CPU wherever it runs: a stored judge's scaler and classifier were fitted on such features
            loaded = load(self.model_path, name, kind="base", version=self.model_version, device="cpu")
            self._model = loaded.memo(("first blocks", self.layer), partial(first_blocks, loaded.model, self.layer,
                                                                            self.model_path))
            self._tok = tok
        return self._model, self._tok

    def _embed(self, texts: list[str]) -> list[np.ndarray]:
        import torch

        model, tok = self._load()
        pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        enc = [tok(t, add_special_tokens=False, truncation=True, max_length=self.max_tokens)["input_ids"] or [pad]
               for t in texts]
        width = max(len(ids) for ids in enc)
        ids = torch.tensor([e + [pad] * (width - len(e)) for e in enc])
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in enc])
        with torch.inference_mode():
            # after block ``layer`` (and the final norm)
            hidden = model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return list(pooled.float().numpy())

    def _cache_file(self) -> Path | None:
        if not self.cache_dir:
            return None
        return Path(self.cache_dir) / f"{self.model_version or 'model'}-l{self.layer}-t{self.max_tokens}.npz"

    def _read_cache(self) -> dict[str, np.ndarray]:
        file = self._cache_file()
        if file is None or not file.is_file():
            return {}
        try:
            with np.load(file) as data:
                return dict(zip(data["keys"].tolist(), data["vectors"]))
        except (OSError, ValueError, KeyError):  # a broken cache is only lost time: rebuild it
            log.warning("embedding cache %s unreadable; recomputing", file)
            return {}

    def _write_cache(self, cache: dict[str, np.ndarray]) -> None:
        file = self._cache_file()
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
        os.replace(tmp, file)  # readers see the old or the new cache, never half

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_model", None), state.pop("_tok", None)  # a saved judge holds the path, not the weights
        return state
