"""A model version covers every byte of the weights: a checkpoint overwritten in place (here one value in
the middle of a 20 MB shard, its mtime set back) is a new version, so the generation cache, keyed by
version, never serves rows of other weights; and the full hash is computed once per change, not per run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from qos_pipeline.generation.models import files
from qos_pipeline.generation.models.checkpoints import signature
from qos_pipeline.generation.models.files import cached_digest, model_version


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    # 30 layers' worth of MLP weights: most tensors lie far from the file's first and last 8 MiB
    save_file({f"layers.{i}.mlp.weight": np.ones(170_000, dtype=np.float32) for i in range(30)},
              str(folder / "model.safetensors"))
    return folder


def _overwrite_in_place(file: Path, tensor: str) -> None:
    """Zero one tensor's bytes where they lie, then set the file's times back (as a careless copy might)."""
    st = file.stat()
    header_len = int.from_bytes(file.read_bytes()[:8], "little")
    header = json.loads(file.read_bytes()[8:8 + header_len])
    start, end = header[tensor]["data_offsets"]
    with file.open("r+b") as fh:
        fh.seek(8 + header_len + start)
        fh.write(b"\0" * (end - start))
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_an_in_place_overwrite_in_the_middle_is_a_new_version(checkpoint: Path, tmp_path: Path):
    weights = checkpoint / "model.safetensors"
    assert weights.stat().st_size > 16 * 1024 * 1024
    before, sig = model_version(checkpoint), signature(checkpoint)
    _overwrite_in_place(weights, "layers.15.mlp.weight")
    assert not load_file(str(weights))["layers.15.mlp.weight"].any()
    assert model_version(checkpoint) != before  # in this process too, whose cache saw the old file
    assert signature(checkpoint) != sig  # the sensor's "unchanged since the last tick" sees it as well


def test_the_full_hash_is_read_once_per_change_across_processes(checkpoint: Path, tmp_path: Path, monkeypatch):
    store = tmp_path / "digests.json"
    version = model_version(checkpoint, store)
    files._DIGESTS.clear()  # as in a new process: only the store remembers
    reads = []
    real = files._full_sha256
    monkeypatch.setattr(files, "_full_sha256", lambda f: reads.append(f.name) or real(f))
    assert model_version(checkpoint, store) == version and reads == []
    _overwrite_in_place(checkpoint / "model.safetensors", "layers.3.mlp.weight")
    assert model_version(checkpoint, store) != version and reads == ["model.safetensors"]
    files._DIGESTS.clear()
    store.write_text("not json")  # a damaged store is only a cache: hashed again
    assert cached_digest(checkpoint / "model.safetensors", store) == real(checkpoint / "model.safetensors")
