"""Checkpoint lineage: the step a folder states (name, trainer_state.json), the time it appeared, its family;
kept across registrations; a broken lineage file is named."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone

import pytest

from qos_pipeline.cli.audit import _enroll
from qos_pipeline.generation.models import lineage
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.settings import Paths


@pytest.mark.parametrize("name, step", [
    ("checkpoint-1200", 1200), ("step_1200", 1200), ("global_step1200", 1200), ("ckpt-7", 7), ("iter_40", 40),
    ("Checkpoint_300", 300), ("run3-checkpoint-1200", 1200), ("llama-2-7b-chat", None), ("waiter12", None),
    ("final", None)])
def test_step_from_folder_name(name, step):
    assert lineage.step_from_name(name) == step


def test_trainer_state_gives_the_step_when_the_name_does_not(tmp_path):
    folder = tmp_path / "final"
    folder.mkdir()
    assert lineage.read_step(folder) == (None, "appeared")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 500, "epoch": 2.0}))
    assert lineage.read_step(folder) == (500, "trainer_state")
    named = tmp_path / "checkpoint-600"
    shutil.copytree(folder, named)  # the name wins over the trainer state
    assert lineage.read_step(named) == (600, "name")
    (folder / "trainer_state.json").write_text("{not json")  # a broken file loses the order, not the checkpoint
    assert lineage.read_step(folder) == (None, "appeared")


def test_record_keeps_the_first_appearance_and_reads_the_rest_again(tmp_path):
    paths = Paths.resolve(warehouse=tmp_path / "wh")
    folder = tmp_path / "final"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    written = datetime(2024, 5, 1, tzinfo=timezone.utc).timestamp()
    os.utime(folder / "config.json", (written, written))
    first = lineage.record(paths, lineage.describe("final", folder, "/runs/a", "v1"))
    assert first.appeared_at == "2024-05-01T00:00:00+00:00"  # the config's mtime: written before it was found
    assert (first.step, first.order_from) == (None, "appeared")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 90}))
    os.utime(folder / "config.json")  # overwritten in place: a newer mtime, a new version, a step now
    again = lineage.record(paths, lineage.describe("final", folder, "/runs/a", "v2"))
    assert (again.appeared_at, again.step, again.version) == (first.appeared_at, 90, "v2")
    assert lineage.load(paths)["final"] == again
    frame = lineage.frame(paths)
    assert list(frame.columns) == lineage.COLUMNS and frame["step"].tolist() == [90]


def test_bad_lineage_input_is_named(tmp_path):
    paths = Paths.resolve(warehouse=tmp_path / "wh")
    with pytest.raises(ModelError, match="family is empty"):
        lineage.describe("k", tmp_path, " ", "v")
    paths.warehouse.mkdir()
    (paths.warehouse / lineage.FILE).write_text("k: {family: a, bogus: 1}\n")
    with pytest.raises(ModelError, match=r"models.lineage.yaml: the entry of 'k' is malformed"):
        lineage.load(paths)
    (paths.warehouse / lineage.FILE).write_text(
        "k: {family: a, step: ten, order_from: name, appeared_at: x, version: v, folder: f}\n")
    with pytest.raises(ModelError, match="malformed"):
        lineage.load(paths)
    (paths.warehouse / lineage.FILE).write_text("- not a mapping\n")
    with pytest.raises(ModelError, match="mapping"):
        lineage.load(paths)


def test_qos_run_puts_checkpoints_in_a_family(tiny_llama_dir, tmp_path):
    paths = Paths.resolve(warehouse=tmp_path / "wh")
    run = tmp_path / "run-1"
    stepped = shutil.copytree(tiny_llama_dir, run / "checkpoint-20")
    plain = shutil.copytree(tiny_llama_dir, run / "my-model")
    for folder in (stepped, plain):
        _enroll(str(folder), None, paths)
    # without --family only a folder stating a step is a checkpoint: its family is the folder holding it
    found = lineage.load(paths)
    assert list(found) == ["checkpoint-20"] and (found["checkpoint-20"].family, found["checkpoint-20"].step) == (
        str(run.resolve()), 20)
    _enroll(str(plain), "exp-a", paths)
    assert lineage.load(paths)["my-model"].family == "exp-a"
