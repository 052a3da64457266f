"""Checkpoint discovery for the new-checkpoint sensor: which folders under the watched directories hold a
complete Hugging Face checkpoint, under which partition key, at which content version.

Pure: no dagster import, so the rules are testable on plain folders. A folder is *ready* when it is a
complete checkpoint (config, tokenizer, every weight shard named in the index, no truncated safetensors
file) and either carries the completion marker or has not changed (file sizes and mtimes) since the
previous scan: a training job still copying shards is never picked up half-written.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from qos_pipeline.generation.models.files import ModelError, check_hf_folder, model_version
from qos_pipeline.provenance import check_key, slugify

DEFAULT_MARKER = ".complete"
# Any one of these next to tokenizer_config.json is a usable tokenizer (fast, sentencepiece, BPE).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")
# Names that writers use for work in progress (rsync, atomic-rename patterns, our own staging).
_TEMP_SUFFIXES = (".tmp", ".partial", ".incomplete", ".lock")


class CheckpointRejected(ValueError):
    """A folder that will never become a partition as it is (unsafe name, escapes its watched root)."""


@dataclass(frozen=True)
class Ready:
    """A complete, stable checkpoint: its partition key, folder, content version (16 hex) and the watched
    folder it was found in (its family, ``lineage``)."""

    key: str
    path: Path
    version: str
    root: Path | None = None


@dataclass
class ScanResult:
    """One scan of the checkpoint folders: ready, waiting and rejected ones, and the cursor for the next scan."""

    ready: list[Ready] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # folder -> why it is not ready yet
    rejected: dict[str, str] = field(default_factory=dict)  # folder -> why it never will be
    seen: dict[str, dict] = field(default_factory=dict)  # folder -> {"sig", "version"}: the next cursor


def partition_key(name: str) -> str:
    """The ``model`` partition key of a checkpoint folder name: its slug (what ``registry.register``
    stores it under). Lower-casing and replacing unsafe runs by ``-`` make names such as ``a|b`` or
    ``x'; drop table`` safe for Dagster keys, file paths and SQL; names that are paths or that keep
    nothing of themselves are rejected."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise CheckpointRejected(f"folder name {name!r} is not a plain folder name")
    key = slugify(name)
    if key == "model" and name.lower() != "model":  # slugify's fallback: nothing of the name survived
        raise CheckpointRejected(f"folder name {name!r} has no letters or digits to build a key from")
    return check_key(key, "model key")


def signature(folder: Path) -> str:
    """Hash of every file's name, size, mtime, ctime and inode: changes while any file is still being written,
    and when one is overwritten in place (whose ctime moves even if its mtime is set back)."""
    entries = sorted((e.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                     for e in os.scandir(folder) if e.is_file(follow_symlinks=True)
                     for st in [e.stat(follow_symlinks=True)])
    return hashlib.sha256(repr(entries).encode()).hexdigest()[:16]


def missing_parts(folder: Path) -> str | None:
    """Why ``folder`` is not (yet) a complete checkpoint, or None when it is."""
    try:
        check_hf_folder(folder, folder.name)
    except ModelError as exc:
        return str(exc)
    if not (folder / "tokenizer_config.json").is_file() or not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return f"{folder} has no tokenizer (tokenizer_config.json plus one of {', '.join(TOKENIZER_FILES)})"
    return None


def candidates(root: Path) -> list[Path]:
    """Immediate sub-folders of a watched folder, sorted (so collisions resolve the same way every
    tick), without hidden or temporary ones."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and not p.name.endswith(_TEMP_SUFFIXES))


def _inside(folder: Path, root: Path) -> Path:
    # A symlink may point anywhere; only folders that really live under the watched root are audited.
    real = folder.resolve()
    if not real.is_relative_to(root):
        raise CheckpointRejected(f"{folder} resolves to {real}, outside the watched folder {root}")
    return real


def assess(folder: Path, root: Path, previous: dict | None, marker: str, store: Path | None = None
           ) -> tuple[Ready | None, dict, str | None]:
    """One folder: (ready checkpoint or None, its cursor entry, why it is waiting). Raises
    ``CheckpointRejected`` for folders that can never be used."""
    key = partition_key(folder.name)
    real = _inside(folder, root)
    sig = signature(real)
    entry = {"sig": sig}
    problem = missing_parts(real)
    if problem:
        return None, entry, problem
    previous = previous or {}
    if not (real / marker).is_file() and previous.get("sig") != sig:
        return None, entry, "files changed since the previous scan (still being written?); waiting one more scan"
    # Hashing reads every weight: reuse the version while the files stay the same.
    same = previous.get("sig") == sig and previous.get("version")
    version = previous["version"] if same else model_version(real, store)
    entry["version"] = version
    return Ready(key, real, version, root), entry, None


def scan(roots: list[Path], seen: dict[str, dict], marker: str = DEFAULT_MARKER,
         claimed: dict[str, str] | None = None, store: Path | None = None) -> ScanResult:
    """Assess every candidate folder under ``roots`` against the previous scan's ``seen`` entries.
    ``claimed`` (key -> folder, the registry) keeps a key with the folder that got it first, whatever
    folders with a colliding name appear later."""
    result = ScanResult()
    keys: dict[str, str] = dict(claimed or {})
    for root in roots:
        for folder in candidates(root):
            where = str(folder)
            try:
                ready, entry, why = assess(folder, root, seen.get(where), marker, store)
            except CheckpointRejected as exc:
                result.rejected[where] = str(exc)
                continue
            except (OSError, ModelError) as exc:  # vanished or unreadable mid-scan: look again next time
                result.waiting[where] = str(exc)
                continue
            result.seen[where] = entry
            if ready is None:
                result.waiting[where] = why or "incomplete"
            elif ready.key in keys and keys[ready.key] != str(ready.path):
                result.rejected[where] = f"its key {ready.key!r} already names {keys[ready.key]}; rename the folder"
            else:
                keys[ready.key] = str(ready.path)
                result.ready.append(ready)
    return result
