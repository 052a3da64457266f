"""Model keys as used by partitions: the registry in ``assets/models.yaml`` plus sources added at run time.

``<warehouse>/models.added.yaml`` remembers two kinds of source under a partition key, so later runs, the
UI, sensors and automation resolve the key the same way:
- a checkpoint folder passed to ``qos run --model PATH`` (or found by the checkpoint sensor), under its slug;
- a file of outputs recorded elsewhere (``qos ingest PATH --model KEY``): re-materializing such a partition
  reads the file again, it never generates.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qos_pipeline.generation.models.files import ModelError, cached_digest
from qos_pipeline.generation.models.registry import ModelSpec, load_registry, resolve_model
from qos_pipeline.provenance import check_key
from qos_pipeline.settings import Paths, read_yaml_mapping


@dataclass(frozen=True)
class RecordedSource:
    """Outputs recorded elsewhere: the file and the prompt format it records (an id stored with each row)."""

    key: str
    file: Path
    prompt_format: str
    labels: bool = False  # the file's human labels are kept with each row (the ``human`` judge)
    max_response_chars: int = 100_000  # the limit it was ingested with (``qos ingest --max-response-chars``)

    @property
    def version(self) -> str:
        """``recorded-`` + 12 hex of the file's sha256: another file (or an edited one) is another version."""
        if not self.file.is_file():
            raise ModelError(f"model {self.key!r} holds outputs recorded from {self.file}, which is gone; restore it "
                             f"or ingest the file again (qos ingest PATH --model {self.key})")
        return "recorded-" + cached_digest(self.file)[:12]


def _added_file(paths: Paths) -> Path:
    return paths.warehouse / "models.added.yaml"


def _entries(paths: Paths) -> dict[str, dict[str, Any]]:
    """Every added source: ``{"folder": path}`` or ``{"recorded": path, "prompt_format": id}``."""
    file = _added_file(paths)
    if not file.is_file():
        return {}
    data = read_yaml_mapping(file, ModelError, "fix or delete it and add the models again")
    # a plain string is a folder (the format of earlier versions)
    return {str(k): v if isinstance(v, dict) else {"folder": str(v)} for k, v in data.items()}


def _save(paths: Paths, entries: dict[str, dict[str, Any]]) -> None:
    file = _added_file(paths)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(entries, sort_keys=True), encoding="utf-8")
    os.replace(tmp, file)


def added_models(paths: Paths) -> dict[str, str]:
    """Folder keys -> folders (recorded sources left out)."""
    return {k: v["folder"] for k, v in _entries(paths).items() if "folder" in v}


def register(key_or_path: str, paths: Paths) -> ModelSpec:
    """Resolve a registry key or a checkpoint folder; remember folders under their key. Returns the spec."""
    entries = _entries(paths)
    if key_or_path in entries:
        return resolve(key_or_path, paths)
    spec = resolve_model(key_or_path, paths.assets, paths.model_cache)
    check_key(spec.key, "model key")
    registry = load_registry(paths.assets)["models"]
    if spec.key in registry and Path(key_or_path).expanduser().exists():
        raise ModelError(f"folder {key_or_path} would take the key {spec.key!r}, which assets/models.yaml "
                         "already uses; rename the folder or add it to the registry under another key")
    taken = entries.get(spec.key)
    if taken is not None and taken.get("folder") != str(spec.path):
        raise ModelError(f"model key {spec.key!r} already names {taken.get('folder') or taken.get('recorded')}; "
                         f"rename the folder {spec.path}")
    if spec.key not in registry:
        _save(paths, {**entries, spec.key: {"folder": str(spec.path)}})
    return spec


def register_recorded(key: str, file: Path, prompt_format: str, labels: bool, paths: Paths,
                      max_response_chars: int = 100_000) -> RecordedSource:
    """Remember that partition key ``key`` holds the outputs recorded in ``file`` (and the response size
    limit it was read with, so every later read of it applies the same)."""
    check_key(key, "model key")
    entries = _entries(paths)
    if "folder" in entries.get(key, {}):
        raise ModelError(f"model key {key!r} names the checkpoint folder {entries[key]['folder']}, whose outputs are "
                         "generated; give the recorded outputs another --model key")
    source = RecordedSource(key, Path(file).resolve(), prompt_format, labels, max_response_chars)
    entry = {"recorded": str(source.file), "prompt_format": prompt_format, "labels": "human" if labels else "none",
             "max_response_chars": max_response_chars}
    _save(paths, {**entries, key: entry})
    return source


def entry(key: str, paths: Paths) -> dict | None:
    """What ``models.added.yaml`` holds for ``key`` now (None: nothing), to put back with ``restore``."""
    return _entries(paths).get(key)


def restore(key: str, saved: dict | None, paths: Paths) -> None:
    """Put back what ``entry`` returned for ``key`` (None: remove the key)."""
    entries = _entries(paths)
    if saved is None:
        entries.pop(key, None)
    else:
        entries[key] = saved
    _save(paths, entries)


def recorded(key: str, paths: Paths) -> RecordedSource | None:
    """The recorded outputs partition key ``key`` holds (``qos ingest``), or None when it names a model."""
    entry = _entries(paths).get(key, {})
    return _recorded(key, entry) if "recorded" in entry else None


def _recorded(key: str, entry: dict[str, Any]) -> RecordedSource:
    return RecordedSource(key, Path(entry["recorded"]), str(entry.get("prompt_format") or "recorded"),
                          entry.get("labels") == "human", int(entry.get("max_response_chars", 100_000)))


def source(key: str, paths: Paths, convert: bool = True) -> ModelSpec | RecordedSource:
    """What partition key ``key`` names: a model to generate with, or a file of recorded outputs.
    ``convert`` False: do not convert the embedded model (its version is known without)."""
    entry = _entries(paths).get(key)
    if entry is None:
        return resolve_model(key, paths.assets, paths.model_cache, convert)
    if "recorded" in entry:
        return _recorded(key, entry)
    # A folder added at run time has no registry settings: keep its key, decide the rest from the checkpoint.
    return dataclasses.replace(resolve_model(entry["folder"], paths.assets, paths.model_cache), key=key)


def resolve(key: str, paths: Paths) -> ModelSpec:
    """The model a partition key generates with; a key of recorded outputs has none."""
    found = source(key, paths)
    if isinstance(found, RecordedSource):
        raise ModelError(f"model key {key!r} holds outputs recorded from {found.file} (qos ingest), so it cannot "
                         "generate; audit the model under another key")
    return found
