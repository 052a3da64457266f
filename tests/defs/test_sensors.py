"""The checkpoint sensor, evaluated tick by tick on real checkpoint folders (a tiny random Llama)."""

from __future__ import annotations

import json
import os
import shutil

import dagster as dg
import pytest

from qos_pipeline.generation.models import checkpoints
from qos_pipeline.defs.partitions import GROUPS
from qos_pipeline.defs.resources import AuditSettings, CheckpointWatch, Storage, from_env
from qos_pipeline.defs.sensors import checkpoint_sensor, design_groups
from qos_pipeline.generation.models.source import resolve
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import partition_file


class Ticks:
    """Evaluates the sensor like the daemon: cursor carried over, partition requests applied."""

    def __init__(self, instance: dg.DagsterInstance, storage: Storage, watch: CheckpointWatch):
        self.instance, self.storage, self.watch, self.cursor, self.run_keys = instance, storage, watch, None, []

    def paths(self):
        return self.storage.paths()

    def tick(self) -> dg.SensorResult:
        resources = {"checkpoint_watch": self.watch, "storage": self.storage, "audit": AuditSettings(design="demo")}
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=resources)
        result = checkpoint_sensor(context)
        self.cursor = result.cursor
        for req in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        self.run_keys += [r.run_key for r in result.run_requests or []]
        return result


@pytest.fixture()
def watch(tmp_path):
    folder = tmp_path / "watch"
    folder.mkdir()
    return folder


@pytest.fixture()
def ticks(tmp_path, watch):
    storage = Storage(warehouse_dir=str(tmp_path / "wh"))
    for group in design_groups("demo", storage.paths()):  # prompts staged: audit runs can follow at once
        path = partition_file(storage.paths().staging, "prompts", group)
        path.parent.mkdir(parents=True)
        path.touch()
    with dg.DagsterInstance.ephemeral() as instance:  # in memory: a sqlite instance costs ~2 s per test
        yield Ticks(instance, storage, CheckpointWatch(dirs=str(watch)))


def _copy(src, dst, marker: bool = False):
    shutil.copytree(src, dst)
    if marker:
        (dst / checkpoints.DEFAULT_MARKER).touch()
    return dst


def _audits(result: dg.SensorResult) -> list[dg.RunRequest]:
    return [r for r in result.run_requests or [] if r.job_name == "audit_job"]


def test_half_written_checkpoint_is_ignored_until_complete(tiny_llama_dir, watch, ticks):
    ckpt = watch / "ckpt-100"
    ckpt.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_llama_dir / name, ckpt)
    weights = (tiny_llama_dir / "model.safetensors").read_bytes()
    # Shard 2 of an index is still missing, shard 1 is cut short: a copy in progress.
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (ckpt / "model-00001-of-00002.safetensors").write_bytes(weights[: len(weights) // 2])
    assert not ticks.tick().run_requests and not ticks.instance.get_dynamic_partitions("model")
    (ckpt / "model.safetensors.index.json").unlink()
    (ckpt / "model-00001-of-00002.safetensors").unlink()
    (ckpt / "model.safetensors").write_bytes(weights[:-100])  # truncated single file
    assert not ticks.tick().run_requests
    (ckpt / "model.safetensors").write_bytes(weights)  # complete now, but just written: wait one tick
    assert not ticks.tick().run_requests
    result = ticks.tick()  # unchanged since the previous tick: accepted
    assert {r.partition_key for r in _audits(result)} == {f"{g}|ckpt-100" for g in GROUPS}
    assert ticks.instance.get_dynamic_partitions("model") == ["ckpt-100"]


def test_completion_marker_skips_the_growth_wait(tiny_llama_dir, watch, ticks):
    _copy(tiny_llama_dir, watch / "ckpt-marked", marker=True)
    assert len(_audits(ticks.tick())) == len(GROUPS)


def test_two_ticks_request_each_run_once(tiny_llama_dir, watch, ticks):
    _copy(tiny_llama_dir, watch / "ckpt-200", marker=True)
    first = ticks.tick()
    assert [r.partitions_def_name for r in first.dynamic_partitions_requests] == ["model"]
    assert len(_audits(first)) == len(GROUPS) == len(set(ticks.run_keys))
    second = ticks.tick()
    assert not second.run_requests and not second.dynamic_partitions_requests
    # Run keys are a function of the checkpoint alone: a sensor starting afresh derives the same ones.
    again = Ticks(ticks.instance, ticks.storage, ticks.watch)
    again.tick()
    assert sorted(again.run_keys) == sorted(ticks.run_keys)


def test_replaced_checkpoint_becomes_a_new_version(tiny_llama_dir, watch, ticks):
    from safetensors.torch import load_file, save_file

    ckpt = _copy(tiny_llama_dir, watch / "ckpt-300")
    ticks.tick()
    first = ticks.tick()
    old_version = resolve("ckpt-300", ticks.paths()).version
    tensors = load_file(ckpt / "model.safetensors")
    name = min(tensors)
    tensors[name] = tensors[name] + 1.0  # training went on and overwrote the folder in place
    save_file(tensors, ckpt / "model.safetensors", metadata={"format": "pt"})
    assert not ticks.tick().run_requests  # changed since the last tick: wait for it to settle
    second = ticks.tick()
    new_version = resolve("ckpt-300", ticks.paths()).version
    assert new_version != old_version
    assert {r.partition_key for r in _audits(second)} == {r.partition_key for r in _audits(first)}
    assert all(new_version in r.run_key and r.tags["qos/model_version"] == new_version for r in _audits(second))
    assert not {r.run_key for r in _audits(first)} & {r.run_key for r in _audits(second)}
    assert not second.dynamic_partitions_requests  # same partition, new version
    assert not ticks.tick().run_requests


def test_hostile_name_with_pipe_is_made_safe_and_unique(tiny_llama_dir, watch, ticks):
    _copy(tiny_llama_dir, watch / "a|b", marker=True)
    result = ticks.tick()
    assert ticks.instance.get_dynamic_partitions("model") == ["a-b"]
    assert {r.partition_key for r in _audits(result)} == {f"{g}|a-b" for g in GROUPS}
    assert resolve("a-b", ticks.paths()).path == (watch / "a|b").resolve()
    # A second folder that would get the same key is rejected, not merged into the first one's partition.
    _copy(tiny_llama_dir, watch / "A-B", marker=True)
    assert not ticks.tick().run_requests
    assert "already names" in json.loads(ticks.cursor)["rejected"][str(watch / "A-B")]


def test_hostile_name_with_path_traversal_is_rejected(tiny_llama_dir, watch, ticks, tmp_path):
    with pytest.raises(checkpoints.CheckpointRejected, match="not a plain folder name"):
        checkpoints.partition_key("../x")
    _copy(tiny_llama_dir, tmp_path / "x", marker=True)
    os.symlink("../x", watch / "x")  # watch/x -> ../x: a folder outside the watched one
    assert not ticks.tick().run_requests
    assert "outside the watched folder" in json.loads(ticks.cursor)["rejected"][str(watch / "x")]
    assert not ticks.instance.get_dynamic_partitions("model")


def test_hostile_name_with_sql_is_made_safe(tiny_llama_dir, watch, ticks):
    _copy(tiny_llama_dir, watch / "x'; drop table", marker=True)
    result = ticks.tick()
    key = ticks.instance.get_dynamic_partitions("model")[0]
    assert key == "x-drop-table" == check_key(key, "model")
    assert len(_audits(result)) == len(GROUPS)
    assert resolve(key, ticks.paths()).path.name == "x'; drop table"


def test_no_watched_folder_skips(ticks):
    ticks.watch = CheckpointWatch(dirs="")
    assert "QOS_CHECKPOINT_DIRS" in ticks.tick().skip_reason.skip_message


def test_watched_folders_and_marker_come_from_the_environment(tmp_path, monkeypatch):
    from qos_pipeline.definitions import build_definitions

    monkeypatch.setenv("QOS_CHECKPOINT_DIRS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}{os.pathsep}")
    monkeypatch.setenv("QOS_CHECKPOINT_MARKER", "DONE")
    watch = from_env(CheckpointWatch, deferred=False)
    assert watch.roots() == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()] and watch.marker == "DONE"
    # in the definitions the variables stay variables: Dagster reads them when a tick or run starts
    resource = build_definitions().resources["checkpoint_watch"]
    assert isinstance(resource.dirs, dg.EnvVar) and resource.dirs.env_var_name == "QOS_CHECKPOINT_DIRS"


def test_sensors_are_off_by_default():
    from qos_pipeline.defs.automation import automation_sensor

    assert checkpoint_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert automation_sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_a_found_checkpoint_gets_its_watched_folder_as_family_and_its_step(tiny_llama_dir, watch, ticks):
    from qos_pipeline.generation.models import lineage

    _copy(tiny_llama_dir, watch / "global_step40", marker=True)
    ticks.tick()
    found = lineage.load(ticks.paths())["global_step40"]
    assert (found.family, found.step, found.order_from) == (str(watch.resolve()), 40, "name")
    assert found.version == resolve("global_step40", ticks.paths()).version
