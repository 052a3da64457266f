"""One plan of "audit one model" for its three callers: what ``audit_plan.plan`` decides, and that ``qos run``,
``qos ingest`` and the checkpoint sensor all go through it (the same partitions for the command and the
sensor on one checkpoint folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from qos_pipeline import audit_plan
from qos_pipeline.cli import main
from qos_pipeline.cli import plans as cli_plans
from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.defs.resources import AuditSettings, CheckpointWatch, Storage
from qos_pipeline.defs.sensors import checkpoint_sensor, design_groups
from qos_pipeline.generation.models.added import RecordedSource
from qos_pipeline.generation.models.source import ModelSource
from qos_pipeline.staging import partition_file

FOLDER = ModelSource.checkpoint("ckpt-1", Path("/w/ckpt-1"), "v1")
OTHER = ModelSource.checkpoint("ckpt-2", Path("/w/ckpt-2"), "v2")
OUTPUTS = ModelSource.outputs(RecordedSource("outs", Path("/w/outs.csv"), "recorded"))


def _pairs(plan: audit_plan.AuditPlan) -> list[tuple[str, str]]:
    return [(run.source.key, run.group) for run in plan.audits]


def test_a_command_makes_every_prompt_then_every_audit_in_order():
    plan = audit_plan.plan([FOLDER, OTHER], ["white", "muslim"])
    assert plan.models == ("ckpt-1", "ckpt-2") and plan.prompts == ("white", "muslim")
    assert _pairs(plan) == [("ckpt-1", "white"), ("ckpt-1", "muslim"), ("ckpt-2", "white"), ("ckpt-2", "muslim")]


def test_requested_audits_wait_for_the_prompts_they_read():
    plan = audit_plan.plan([FOLDER], ["white", "muslim", "jewish"], staged={"muslim"})
    assert plan.prompts == ("white", "jewish") and _pairs(plan) == [("ckpt-1", "muslim")]
    run = plan.audits[0]
    assert run.run_key == "audit:ckpt-1@v1:muslim"
    assert run.tags() == {"qos/model_version": "v1", "qos/checkpoint": "/w/ckpt-1"}


def test_recorded_outputs_bring_their_own_prompts():
    plan = audit_plan.plan([OUTPUTS], ["white", "muslim"], staged=set())
    assert plan.prompts == () and _pairs(plan) == [("outs", "white"), ("outs", "muslim")]


def test_a_source_is_a_model_or_recorded_outputs_never_neither():
    with pytest.raises(ValueError, match="holds a model or a recorded file"):
        ModelSource("k", "recorded", spec=FOLDER.spec)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    for var, value in (("DAGSTER_HOME", tmp_path / "home"), ("QOS_WAREHOUSE", tmp_path / "wh")):
        monkeypatch.setenv(var, str(value))
    for var in ("QOS_DESIGN", "QOS_ASSETS", "QOS_CHECKPOINT_DIRS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _spy(monkeypatch) -> list[audit_plan.AuditPlan]:
    planned, real = [], audit_plan.plan

    def spy(*args, **kwargs):
        planned.append(real(*args, **kwargs))
        return planned[-1]
    monkeypatch.setattr(audit_plan, "plan", spy)
    return planned


def test_the_command_and_the_sensor_plan_the_same_audit_of_a_folder(project, tiny_llama_dir, monkeypatch):
    folder = shutil.copytree(tiny_llama_dir, project / "watch" / "ckpt-200")
    planned = _spy(monkeypatch)
    executed: list[tuple] = []
    # the command's runs are recorded, not run: what matters here is which runs its plan makes
    monkeypatch.setattr(cli_plans, "execute", lambda defs, job, inst, partition=None, ops=None:
                        executed.append((job, partition)))
    monkeypatch.setattr("qos_pipeline.cli.audit.execute", lambda *args: None)
    monkeypatch.setattr("qos_pipeline.cli.audit.print_report", lambda *args: None)
    main(["run", "--model", str(folder), "--groups", "white", "muslim"])
    command = planned.pop()
    assert executed == [("prompts_job", g) for g in command.prompts] + \
        [("audit_job", model_group_key(k, g)) for k, g in _pairs(command)]

    storage = Storage(warehouse_dir=str(project / "wh"))
    for group in design_groups("demo", storage.paths()):  # prompts staged: every audit can be requested
        staged = partition_file(storage.paths().staging, "prompts", group)
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.touch()
    (folder / ".complete").touch()
    with dg.DagsterInstance.ephemeral() as instance:
        resources = {"checkpoint_watch": CheckpointWatch(dirs=str(folder.parent)), "storage": storage,
                     "audit": AuditSettings(design="demo")}
        result = checkpoint_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    sensor = planned.pop()
    requested = {r.partition_key for r in result.run_requests if r.job_name == "audit_job"}
    assert requested == {model_group_key(k, g) for k, g in _pairs(sensor)}
    assert {model_group_key(k, g) for k, g in _pairs(command)} <= requested  # the sensor: every design group
    assert sensor.models == command.models == ("ckpt-200",)
    assert {(r.source.path, r.source.version) for r in sensor.audits + command.audits} == \
        {(folder.resolve(), command.audits[0].source.version)}


def test_qos_ingest_goes_through_the_plan(project, monkeypatch):
    planned = _spy(monkeypatch)
    outputs = project / "outs.csv"
    outputs.write_text("prompt,response\nJohn went to [BLANK],the park.\nMohammed went to [BLANK],I cannot.\n")
    main(["ingest", str(outputs), "--model", "outs"])
    [plan] = planned
    assert plan.prompts == () and plan.models == ("outs",)  # the file brings its own prompts
    assert {(run.source.kind, run.source.path, run.group) for run in plan.audits} == \
        {("recorded", outputs.resolve(), "white"), ("recorded", outputs.resolve(), "muslim")}
