"""Model keys as used by partitions: the registry in ``assets/models.yaml`` plus folders added at run time.

A folder passed to ``qos run --model PATH`` gets a safe key (its slug) recorded in
``<warehouse>/models.added.yaml``, so later runs, the UI and sensors resolve the same key to the same folder.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from qos_pipeline.settings import Paths, read_yaml_mapping
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.registry import ModelSpec, load_registry, resolve_model
from qos_pipeline.provenance import check_key


def _added_file(paths: Paths) -> Path:
    return paths.warehouse / "models.added.yaml"


def added_models(paths: Paths) -> dict[str, str]:
    file = _added_file(paths)
    if not file.is_file():
        return {}
    data = read_yaml_mapping(file, ModelError, "fix or delete it and add the models again")
    return {str(k): str(v) for k, v in data.items()}


def register(key_or_path: str, paths: Paths) -> ModelSpec:
    """Resolve a registry key or a checkpoint folder; remember folders under their key. Returns the spec."""
    known = added_models(paths)
    if key_or_path in known:
        return resolve(key_or_path, paths)
    spec = resolve_model(key_or_path, paths.assets, paths.model_cache)
    check_key(spec.key, "model key")
    if spec.key in load_registry(paths.assets)["models"] and Path(key_or_path).expanduser().exists():
        raise ModelError(f"folder {key_or_path} would take the key {spec.key!r}, which assets/models.yaml "
                         "already uses; rename the folder or add it to the registry under another key")
    if spec.key not in load_registry(paths.assets)["models"]:
        if known.get(spec.key, str(spec.path)) != str(spec.path):
            raise ModelError(f"model key {spec.key!r} already names {known[spec.key]}; rename the folder {spec.path}")
        known[spec.key] = str(spec.path)
        file = _added_file(paths)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(known, sort_keys=True), encoding="utf-8")
        os.replace(tmp, file)
    return spec


def resolve(key: str, paths: Paths) -> ModelSpec:
    """The spec of a partition's model key (registry key or a folder added earlier)."""
    folder = added_models(paths).get(key)
    if folder is None:
        return resolve_model(key, paths.assets, paths.model_cache)
    # A folder added at run time has no registry settings: keep its key, decide the rest from the checkpoint.
    return dataclasses.replace(resolve_model(folder, paths.assets, paths.model_cache), key=key)
