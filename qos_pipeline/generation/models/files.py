"""Checkpoint folders on disk: completeness checks (no half-written model is ever loaded) and content hashes.

Pure: no torch, no dagster. ``model_version`` is the identity recorded with every generated row.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FOLDER_HINT = "or pass a folder with config.json and *.safetensors (as written by save_pretrained)"


class ModelError(ValueError):
    """A model cannot be resolved or used; the message names the model and says what to do."""


def weight_files(folder: Path) -> list[Path]:
    """The checkpoint's weight files: ``*.safetensors``, else legacy ``pytorch_model*.bin``."""
    found = sorted(Path(folder).glob("*.safetensors"))
    return found or sorted(Path(folder).glob("pytorch_model*.bin"))


def check_hf_folder(folder: Path, name: str) -> None:
    """Raise ModelError unless ``folder`` is a complete HF checkpoint (config, every shard, whole files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model {name!r}: folder {folder} does not exist; {FOLDER_HINT}")
    if not (folder / "config.json").is_file():
        raise ModelError(
            f"model {name!r}: {folder} has no config.json, so it is no HF checkpoint; {FOLDER_HINT}"
        )
    _check_config(folder / "config.json", name)
    _check_tokenizer(folder, name)
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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model")
"""A tokenizer's vocabulary, in one of the formats transformers saves (fast, SentencePiece, BPE, WordPiece)."""


def _json_object(file: Path, name: str, what: str) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"model {name!r}: {file} is not valid JSON ({exc}); it is damaged: copy {what} again from "
                         "where the checkpoint came from, or re-save it with save_pretrained") from None
    if not isinstance(data, dict):
        raise ModelError(f"model {name!r}: {file} holds a JSON {type(data).__name__}, not the object {what} is; "
                         "copy it again or re-save the checkpoint with save_pretrained")
    return data


def _check_config(file: Path, name: str) -> None:
    """config.json, checked before any loading: JSON, naming its architecture (``model_type``), and no custom
    code (``_refuse_custom_code``)."""
    config = _json_object(file, name, "the model config")
    _refuse_custom_code(config, file, name)
    if "model_type" not in config:
        raise ModelError(f"model {name!r}: {file} has no 'model_type', so transformers cannot tell which model it "
                         "configures; copy config.json again from where the checkpoint came from, or re-save it "
                         "with save_pretrained")


def _refuse_custom_code(config: dict, file: Path, name: str) -> None:
    """A config whose ``auto_map`` names Python classes asks transformers to import code from the folder or a
    hub repository; qos never runs it (trust_remote_code stays off), so such a folder is refused here, before it
    is registered or becomes a partition, rather than failing at load time."""
    if config.get("auto_map"):
        raise ModelError(f"model {name!r}: {file} names custom model code (auto_map: "
                         f"{', '.join(map(str, config['auto_map']))}), which qos never runs; use a checkpoint of an "
                         "architecture built into transformers (or convert it to one)")


def _check_tokenizer(folder: Path, name: str) -> None:
    """A tokenizer is saved beside the weights (``tokenizer.save_pretrained``): its vocabulary, and its config
    readable when present. Found here, before the model is loaded or registered."""
    config = folder / "tokenizer_config.json"
    if config.is_file():
        _refuse_custom_code(_json_object(config, name, "the tokenizer config"), config, name)
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"model {name!r}: {folder} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save "
                         "the tokenizer of the model it was trained from into that folder "
                         "(AutoTokenizer.from_pretrained(BASE).save_pretrained(FOLDER))")


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


_DIGESTS: dict[tuple, str] = {}
"""This process's digests, by ``_identity`` of the file: re-hashing GBs of weights per call is too slow."""


def _identity(file: Path) -> tuple:
    """What changes whenever the file's bytes can have: its place, size, mtime, and ctime and inode, which no
    tool can set back (an in-place overwrite that restores the mtime still moves the ctime)."""
    st = file.stat()
    return (str(file.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def cached_digest(file: Path, store: Path | None = None) -> str:
    """sha256 of the whole file, computed once per change of its ``_identity``: kept in this process and,
    with ``store`` (a JSON file, e.g. ``<model cache>/digests.json``), across processes, so a checkpoint
    costs one full read per change, not per run."""
    key = _identity(file)
    if key in _DIGESTS:
        return _DIGESTS[key]
    known = _read_store(store)
    entry = known.get(key[0])
    if entry and tuple(entry.get("identity", ())) == key[1:]:
        digest = entry["sha256"]
    else:
        digest = _full_sha256(file)
        if store is not None:
            _write_store(store, {**_read_store(store), key[0]: {"identity": list(key[1:]), "sha256": digest}})
    _DIGESTS[key] = digest
    return digest


def _read_store(store: Path | None) -> dict:
    try:
        data = json.loads(store.read_text(encoding="utf-8")) if store is not None and store.is_file() else {}
    except (OSError, ValueError):  # damaged or unreadable: hash again (and rewrite it)
        return {}
    return data if isinstance(data, dict) else {}


def _write_store(store: Path, data: dict) -> None:
    try:  # a lost update only costs one more hash, so concurrent writers need no lock
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, store)
    except OSError:  # a read-only cache folder: digests are then kept in this process only
        pass


def _full_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def digest_store(model_cache: Path) -> Path:
    """Where the weight files' digests are kept across processes: beside the converted models."""
    return Path(model_cache) / "digests.json"


def model_version(path: Path, store: Path | None = None) -> str:
    """16-hex content hash of config.json, generation_config.json and every byte of the weight files (each
    file's sha256, ``cached_digest``; ``store``: where digests are kept across processes).

    Independent of the folder's location, so a copied checkpoint keeps its version; any change to a weight
    (a checkpoint overwritten in place, a LoRA merged into middle layers) is a new version.
    """
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ModelError(f"cannot version {folder}: no config.json; {FOLDER_HINT}")
    digest = hashlib.sha256(b"qos-model-version/2\0")
    for name in ("config.json", "generation_config.json"):
        file = folder / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    for file in weight_files(folder):
        digest.update(f"{file.name}\0{file.stat().st_size}\0{cached_digest(file, store)}\0".encode())
    return digest.hexdigest()[:16]
