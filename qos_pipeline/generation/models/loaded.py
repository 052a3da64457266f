"""The models this process has loaded: one loader for every Hugging Face model the pipeline runs (the generator,
the llm judge, the learned judge's hidden states, the toxicity classifier) and one cache of what it loaded.

``load`` checks the folder first (config, tokenizer, complete weights, no custom code: ``files.check_hf_folder``),
then loads it as the class asked for (``loading.CLASSES``: causal LM, sequence classifier or base model), in
the dtype and on the device asked for, and keeps it in ``MODELS``, keyed by ``LoadKey`` (folder, content
version, class, dtype, device): the generator and a judge on the same folder and class share one copy, and a
partition after the first loads nothing. Errors are one-line ``ModelError``s naming the model.

Size limit: ``MODELS`` keeps at most ``MAX_LOADED`` models, evicting the least recently used, and hands
freed CUDA memory back on eviction. A model that runs out of GPU memory while loading is tried once more
after every other model is evicted. An evicted model's memory is freed once its last user lets go of it too
(the generators and judges built per partition do).

Pure: no dagster, and no torch until a model is loaded (the loading itself is ``loading``, imported then).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qos_pipeline.generation.models.files import ModelError, check_hf_folder, model_version

log = logging.getLogger("qos_pipeline.generation")
T = TypeVar("T")

MAX_LOADED = 3
"""Models kept at once: an audit alternates between the generator's model and its judge's (the llm judge, or a
learned judge's feature model), and may score toxicity with a third; with fewer, every partition would load
one of them again. GPU memory is guarded separately (a load that runs out of it first evicts the rest)."""


@dataclass(frozen=True)
class LoadKey:
    """What makes two loads the same model: the folder, its content version, the class and where and how it
    is held (``dtype`` and ``device`` as resolved: ``float32`` on CPU, ``auto`` for accelerate's device map)."""

    path: str
    version: str
    kind: str
    dtype: str
    device: str


@dataclass
class Loaded:
    """A loaded model and what its users derived from it (``memo``), which lives and is evicted with it."""

    key: LoadKey
    model: Any
    derived: dict[Any, Any] = field(default_factory=dict, repr=False)

    def memo(self, name: Any, build: Callable[[], T]) -> T:
        """``build()`` once per loaded model: e.g. its compiled forward, or the decoder's captured CUDA graphs,
        which a new generator or judge on the same model then reuses."""
        if name not in self.derived:
            self.derived[name] = build()
        return self.derived[name]


class LoadedModels:
    """A least-recently-used cache of loaded models holding at most ``limit`` of them (thread-safe)."""

    def __init__(self, limit: int = MAX_LOADED) -> None:
        if limit < 1:
            raise ValueError(f"a model cache must hold at least one model, not {limit}")
        self.limit = limit
        self._entries: OrderedDict[LoadKey, Loaded] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0  # how many models were loaded (not found): what the tests count

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[LoadKey]:
        """The cached keys, least recently used first."""
        return list(self._entries)

    def get(self, key: LoadKey, build: Callable[[], Any]) -> Loaded:
        """The cached model of ``key``, else ``build()``'s, kept (evicting beyond ``limit``)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            try:
                model = build()
            except Exception as exc:
                if not (_out_of_memory(exc) and self._entries):
                    raise
                log.warning("out of memory loading %s; evicting the %d other loaded model(s) and trying again",
                            key.path, len(self._entries))
                self.clear()
                model = build()
            self.loads += 1
            self._entries[key] = Loaded(key, model)
            self._shrink(self.limit)
            return self._entries[key]

    def resize(self, limit: int) -> None:
        """Keep at most ``limit`` models from now on (evicting the least recently used beyond it)."""
        if limit < 1:
            raise ValueError(f"a model cache must hold at least one model, not {limit}")
        with self._lock:
            self.limit = limit
            self._shrink(limit)

    def clear(self) -> None:
        """Evict every model."""
        with self._lock:
            self._shrink(0)

    def _shrink(self, limit: int) -> None:
        evicted = False
        while len(self._entries) > limit:
            key, entry = self._entries.popitem(last=False)
            entry.derived.clear()  # compiled graphs and caches hold the model's memory too
            log.info("evicted %s (%s, %s on %s) from the loaded models", key.path, key.kind, key.dtype, key.device)
            evicted = True
        if evicted:
            gc.collect()  # modules hold reference cycles: free the weights now, not at the next collection
            if "torch" in sys.modules:
                from qos_pipeline.generation.models.loading import free_accelerator_memory

                free_accelerator_memory()


MODELS = LoadedModels()
"""This process's loaded models (``MAX_LOADED`` at most)."""


def _out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")  # a load that ran out of GPU memory has imported torch
    return torch is not None and isinstance(exc, torch.OutOfMemoryError)


def load(folder: Path | str, name: str, kind: str = "causal", version: str = "", dtype: str | None = None,
         device: str | None = None, models: LoadedModels | None = None) -> Loaded:
    """The model in ``folder`` (called ``name`` in errors) as class ``kind`` (``causal``, ``classifier`` or
    ``base``), loaded once per ``LoadKey`` into ``models`` (default ``MODELS``).

    ``version``: the content version the caller records (default: the folder's ``model_version``).
    ``dtype``: on CUDA (``bfloat16``, ``float16``, ``float32`` or ``auto``: the checkpoint's; default
    bfloat16); CPU runs float32. ``device``: ``cpu``, ``cuda`` (spread over the GPUs when several are
    visible), ``cuda:N``, or ``auto`` (accelerate's device map); default CUDA when present.
    """
    from qos_pipeline.generation.models import loading

    folder = Path(folder).expanduser().resolve()
    where = loading.resolve_device(device)
    key = LoadKey(str(folder), version or model_version(folder), kind, loading.resolve_dtype(where, dtype), where)
    try:
        return (MODELS if models is None else models).get(key, lambda: _build(key, name))
    except Exception as exc:
        if _out_of_memory(exc):
            raise ModelError(f"model {name!r} does not fit in GPU memory even with no other model loaded "
                             f"({loading.first_line(exc)}); make more GPUs visible or pick a smaller dtype in "
                             "assets/models.yaml") from exc
        raise


def _build(key: LoadKey, name: str) -> Any:
    from qos_pipeline.generation.models import loading

    check_hf_folder(Path(key.path), name)
    model = loading.load_weights(Path(key.path), name, key.kind, key.dtype, key.device)
    loading.settle(model, key.kind, loading.load_tokenizer(Path(key.path), name, padding_side=None))
    return model


def load_tokenizer(folder: Path | str, name: str, padding_side: str | None = "left") -> Any:
    """The tokenizer of ``folder`` (checked first, like ``load``'s), with a pad token and ``padding_side``
    (None: as saved). Not cached: each user sets its own padding, and loading one takes milliseconds."""
    from qos_pipeline.generation.models import loading

    folder = Path(folder).expanduser().resolve()
    check_hf_folder(folder, name)
    return loading.load_tokenizer(folder, name, padding_side)
