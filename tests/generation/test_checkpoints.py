"""Pure checkpoint rules: partition keys from folder names, which folders are candidates, file signatures."""

from __future__ import annotations


import pytest

from qos_pipeline.generation.models import checkpoints
from qos_pipeline.provenance import check_key


@pytest.mark.parametrize("name,key", [("Llama-2-7B-Chat", "llama-2-7b-chat"), ("a|b", "a-b"),
                                      ("x'; drop table", "x-drop-table"), ("run 1/ckpt", None),
                                      ("..", None), ("???", None), ("model", "model")])
def test_partition_key_is_safe_or_rejected(name, key):
    if key is None:
        with pytest.raises(checkpoints.CheckpointRejected):
            checkpoints.partition_key(name)
    else:
        assert checkpoints.partition_key(name) == check_key(key, "model") == key


def test_candidates_skip_hidden_and_temporary_folders(tmp_path):
    for name in ("ckpt-1", ".ckpt-2", "ckpt-3.tmp", "ckpt-4.partial"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in checkpoints.candidates(tmp_path)] == ["ckpt-1"]
    assert checkpoints.candidates(tmp_path / "missing") == []


def test_signature_changes_while_a_file_grows(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    before = checkpoints.signature(tmp_path)
    assert checkpoints.signature(tmp_path) == before
    with (tmp_path / "model.safetensors").open("ab") as fh:
        fh.write(b"y")
    assert checkpoints.signature(tmp_path) != before


def test_missing_tokenizer_is_incomplete(tiny_llama_dir, tmp_path):
    import shutil

    ckpt = shutil.copytree(tiny_llama_dir, tmp_path / "ckpt")
    assert checkpoints.missing_parts(ckpt) is None
    (ckpt / "tokenizer.json").unlink()
    assert "no tokenizer" in checkpoints.missing_parts(ckpt)
