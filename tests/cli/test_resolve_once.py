"""A model key is resolved once: ``qos run --model FOLDER`` over two groups reads the YAML files, checks the
folder and hashes the weights once, though it registers the folder and runs two partitions (real HF path on
a tiny Llama, real Dagster instance); a checkpoint overwritten in place is resolved again."""

from __future__ import annotations

import collections
import json
import shutil

import pytest

from qos_pipeline.cli import main
from qos_pipeline.generation.models import registry
from qos_pipeline.generation.models.source import resolve_source
from qos_pipeline.settings import Paths


def _count(monkeypatch, calls: collections.Counter) -> None:
    """Count the resolving calls where the resolution makes them (registry.py's names)."""
    for name in ("model_version", "check_hf_folder", "parse"):
        real = getattr(registry, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(registry, name, counted)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    for var in ("QOS_JUDGES", "QOS_SEED", "QOS_DESIGN", "QOS_SAMPLES", "QOS_ASSETS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_qos_run_resolves_a_folder_once_for_all_its_partitions(project, tiny_llama_dir, monkeypatch):
    folder = shutil.copytree(tiny_llama_dir, project / "ckpt-a")
    calls: collections.Counter = collections.Counter()
    _count(monkeypatch, calls)
    main(["run", "--model", str(folder), "--groups", "white", "muslim", "--samples", "1", "--max-new-tokens", "4",
          "--judge", "rules"])
    # before: 3 hashes and folder checks (the command, then each partition's generator), 4 registry reads
    assert calls == {"model_version": 1, "check_hf_folder": 1, "parse": 2}


def test_a_checkpoint_changed_in_place_is_resolved_again(project, tiny_llama_dir, monkeypatch):
    paths = Paths.resolve(None, project / "wh", project / "cache")
    folder = shutil.copytree(tiny_llama_dir, project / "ckpt-b")
    first = resolve_source(str(folder), paths)
    calls: collections.Counter = collections.Counter()
    _count(monkeypatch, calls)
    assert resolve_source(str(folder), paths) is first and not calls  # unchanged: nothing read again
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    again = resolve_source(str(folder), paths)
    assert calls["model_version"] == 1 and again.version != first.version and again.kind == "folder"
