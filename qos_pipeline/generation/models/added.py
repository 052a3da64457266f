"""Model sources added at run time, beside the registry in ``assets/models.yaml``; keys are resolved into
sources by ``source.resolve_source``.

``<warehouse>/models.added.yaml`` remembers two kinds of source under a partition key, so later runs, the
UI, sensors and automation resolve the key the same way:
- a checkpoint folder passed to ``qos run --model PATH`` (or found by the checkpoint sensor), under its slug;
- a file of outputs recorded elsewhere (``qos ingest PATH --model KEY``): re-materializing such a partition
  reads the file again, it never generates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qos_pipeline.generation.models.files import ModelError, cached_digest
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


def save_entry(key: str, value: dict, paths: Paths) -> None:
    """Remember ``value`` (``{"folder": path}``) under ``key`` (the caller holds the warehouse's writer lock)."""
    _save(paths, {**_entries(paths), key: value})


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
    found = _entries(paths).get(key, {})
    return recorded_source(key, found) if "recorded" in found else None


def recorded_source(key: str, found: dict) -> RecordedSource:
    """The recorded outputs an entry of ``models.added.yaml`` (one with ``recorded``) describes."""
    return RecordedSource(key, Path(found["recorded"]), str(found.get("prompt_format") or "recorded"),
                          found.get("labels") == "human", int(found.get("max_response_chars", 100_000)))
