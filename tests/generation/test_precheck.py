"""The model folder pre-check: config, tokenizer and weights are checked before anything is loaded, and a
folder that fails is neither registered nor made a partition."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.registry import resolve_model
from tests.paths import ASSETS, ROOT


def _broken(tmp_path: Path, tiny_llama_dir: Path, name: str, damage) -> Path:
    folder = shutil.copytree(tiny_llama_dir, tmp_path / name)
    damage(folder)
    return folder


CASES = {
    "garbage-config": (lambda f: (f / "config.json").write_text("{ not json"),
                       r"garbage-config/config.json is not valid JSON .*copy the model config again"),
    "list-config": (lambda f: (f / "config.json").write_text("[1, 2]"), r"holds a JSON list, not the object"),
    "no-model-type": (lambda f: (f / "config.json").write_text('{"hidden_size": 32}'), r"has no 'model_type'"),
    "no-tokenizer": (lambda f: (f / "tokenizer.json").unlink(),
                     r"no-tokenizer has no tokenizer \(none of tokenizer.json.*save the tokenizer of the model"),
    "garbage-tokenizer-config": (lambda f: (f / "tokenizer_config.json").write_text("<html>"),
                                 r"tokenizer_config.json is not valid JSON"),
}


@pytest.mark.parametrize("name", CASES)
def test_a_broken_folder_is_named_before_loading(tmp_path, tiny_llama_dir, name):
    damage, match = CASES[name]
    with pytest.raises(ModelError, match=match):
        resolve_model(str(_broken(tmp_path, tiny_llama_dir, name, damage)), ASSETS, tmp_path)


def test_a_failing_folder_is_not_registered_nor_a_partition(tmp_path, tiny_llama_dir, monkeypatch):
    from qos_pipeline.cli import main

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    folder = _broken(tmp_path, tiny_llama_dir, "ckpt-no-tok", CASES["no-tokenizer"][0])
    with pytest.raises(SystemExit) as exc:
        main(["run", "--model", str(folder), "--groups", "white"])
    assert "ckpt-no-tok has no tokenizer" in str(exc.value)
    assert not (tmp_path / "wh" / "models.added.yaml").exists()
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions("model") == [] and not instance.get_runs()
