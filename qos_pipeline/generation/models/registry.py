"""Model registry (``assets/models.yaml``) and model identity (content-hash versions).

A model is named either by a registry key or by a local folder holding a Hugging Face checkpoint.
Every generation row carries ``ModelSpec.version``, a hash of what was loaded, so a checkpoint that is
overwritten in place under the same name is still told apart. Pure: no torch, no dagster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qos_pipeline.asset_files import ModelsFile, parse
from qos_pipeline.generation.models.embedded import embedded_folder, embedded_version, ensure_embedded_model
from qos_pipeline.generation.models.files import FOLDER_HINT, ModelError, check_hf_folder, digest_store, model_version
from qos_pipeline.provenance import slugify

REGISTRY_FILE = "models.yaml"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: registry key (or folder slug), HF folder, 16-hex content hash, and the registry's
    settings for it (None = decide from the checkpoint: dtype bf16 on CUDA, context from its config)."""

    key: str
    path: Path
    version: str
    revision: str | None = None
    dtype: str | None = None
    prompt_format: str | None = None
    max_context: int | None = None
    sampling: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def load_registry(assets_dir: Path) -> dict[str, Any]:
    """Read and validate ``models.yaml``: ``{"default": key | None, "models": {key: entry}}``; the shape
    (fields and types, no unknown field) by ``asset_files.ModelsFile``, the rest here."""
    file = Path(assets_dir) / REGISTRY_FILE
    data = parse(file, ModelsFile, ModelError)
    models = {key: entry.model_dump(exclude_unset=True) for key, entry in data.models.items()}
    for key, entry in models.items():
        _validate_entry(str(key), entry, file)
    if data.default is not None and data.default not in models:
        raise ModelError(f"{file}: default {data.default!r} is not one of the keys: {', '.join(models)}")
    return {"default": data.default, "models": models}


def _validate_entry(key: str, entry: dict[str, Any], file: Path) -> None:
    # Checked at load time so a typo in the YAML fails before any model is touched.
    if slugify(key) != key:
        raise ModelError(f"{file}: model key {key!r} must be lowercase [a-z0-9._-] (e.g. {slugify(key)!r})")
    if entry.get("source") == "embedded":
        missing = [f for f in ("package", "gguf_file") if not entry.get(f)]
        if missing:
            raise ModelError(f"{file}: embedded model {key!r} lacks {', '.join(missing)}")
    elif not entry.get("path") and not entry.get("hub"):
        raise ModelError(f"{file}: model {key!r} needs `path: /a/local/hf/folder`, `hub: org/name` "
                         "(from the local Hugging Face cache) or `source: embedded`")


def _spec(key: str, folder: Path, version: str, entry: dict[str, Any]) -> ModelSpec:
    dtype = entry.get("dtype")
    return ModelSpec(key, folder, version, revision=entry.get("revision"),
                     dtype=None if dtype in (None, "auto") else dtype, prompt_format=entry.get("prompt_format"),
                     max_context=entry.get("max_context"), sampling=dict(entry.get("sampling") or {}))


def hub_snapshot(key: str, repo_id: str, revision: str | None) -> Path:
    """The folder of a hub model already in the local Hugging Face cache; never downloads."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, or a revision missing from the cache
        raise ModelError(
            f"model {key!r}: {repo_id}@{revision or 'main'} is not in the local Hugging Face cache ({exc}); "
            f"download it where there is network (huggingface-cli download {repo_id}"
            f"{' --revision ' + revision if revision else ''}) or give the registry entry a local `path:`"
        ) from exc


def _resolve_entry(key: str, entry: dict[str, Any], assets_dir: Path, cache_dir: Path, convert: bool) -> ModelSpec:
    if entry.get("source") == "embedded":
        folder = ensure_embedded_model(entry, cache_dir) if convert else embedded_folder(entry, cache_dir)
        return _spec(key, folder, embedded_version(entry), entry)
    if entry.get("hub") and not entry.get("path"):
        folder = hub_snapshot(key, str(entry["hub"]), entry.get("revision"))
    else:
        folder = Path(entry["path"]).expanduser()
        folder = folder if folder.is_absolute() else Path(assets_dir) / folder
    check_hf_folder(folder, key)
    return _spec(key, folder.resolve(), model_version(folder, digest_store(cache_dir)), entry)


def resolve_model(key_or_path: str, assets_dir: Path, cache_dir: Path, convert: bool = True,
                  models: dict[str, Any] | None = None) -> ModelSpec:
    """Resolve a registry key or a local HF checkpoint folder into a loadable, versioned spec.

    Registry ``path:`` entries that are relative are taken from the registry file's folder. ``convert``
    False: the embedded model's version without converting it (its folder may not exist yet). ``models``:
    the registry's entries when the caller has read them already.
    """
    models = load_registry(assets_dir)["models"] if models is None else models
    if key_or_path in models:
        return _resolve_entry(key_or_path, models[key_or_path], assets_dir, cache_dir, convert)
    folder = Path(key_or_path).expanduser()
    if not folder.exists() and not _looks_like_path(key_or_path):
        raise ModelError(
            f"unknown model {key_or_path!r}; known keys: {', '.join(sorted(models))}; {FOLDER_HINT}"
        )
    check_hf_folder(folder, key_or_path)
    folder = folder.resolve()
    return ModelSpec(slugify(folder.name), folder, model_version(folder, digest_store(cache_dir)))


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.startswith((".", "~"))


