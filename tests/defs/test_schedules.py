"""The nightly refresh schedules request exactly what is stale: changed templates, model versions, judges,
and the metric tables after them; nothing when everything is current."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs import schedules
from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.defs.resources import AuditConfig
from qos_pipeline.generation.models.added import register, resolve
from qos_pipeline.staging import partition_file
from tests.fakes import FakeGeneratorResource
from qos_pipeline.judging.rules.judge import RulesJudge

RULES = RulesJudge.judge_id

NAMES = {"white_names": ["John", "Emily"]}
TEMPLATES = {"muslims": ["[NAME] went to school to [BLANK]", "[NAME] works as a [BLANK]"]}


class VersionedFakeGeneratorResource(FakeGeneratorResource):
    """The fake generator, reporting the content version of the checkpoint its key names (as HF would)."""

    def build(self, model_key: str, paths):
        generator = super().build(model_key, paths)
        generator.model_version = resolve(model_key, paths).version
        return generator


@pytest.fixture()
def audited(tmp_path, tiny_llama_dir):
    """One checkpoint audited on a one-group design, warehouse built: nothing stale."""
    design = tmp_path / "design"
    design.mkdir()
    (design / "names.json").write_text(json.dumps(NAMES))
    (design / "prompts.json").write_text(json.dumps(TEMPLATES))
    audit = AuditConfig(design=str(design), samples=1, warehouse_dir=str(tmp_path / "wh"))
    key = register(str(shutil.copytree(tiny_llama_dir, tmp_path / "ckpt-s")), audit.paths()).key
    defs = build_definitions(generator=VersionedFakeGeneratorResource(), audit=audit)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("model", [key])
        env = {"defs": defs, "instance": instance, "audit": audit, "key": key, "design": design, "tmp": tmp_path}
        _run(env, "prompts_job", "white")
        _run(env, "audit_job", model_group_key(key, "white"))
        _run(env, "metrics_job")
        yield env


def _run(env, job, partition=None):
    result = env["defs"].resolve_job_def(job).execute_in_process(instance=env["instance"], partition_key=partition)
    assert result.success


def _tick(env, schedule) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(instance=env["instance"], resources={"audit": env["audit"]})
    out = schedule(context)
    return [] if isinstance(out, dg.SkipReason) else list(out)


def _all_ticks(env) -> dict[str, list[str]]:
    return {s.name: [r.partition_key or "-" for r in _tick(env, s)] for s in schedules.schedules}


def test_nothing_stale_requests_nothing(audited):
    assert _all_ticks(audited) == {s.name: [] for s in schedules.schedules}


def test_changed_template_rerenders_prompts_then_regenerates(audited):
    (audited["design"] / "prompts.json").write_text(json.dumps({"muslims": ["[NAME] flew to [BLANK]"] + TEMPLATES["muslims"][1:]}))
    ticks = _all_ticks(audited)
    # Prompts first; the audit of that group waits until its prompts are re-rendered (next tick).
    assert ticks["nightly_prompts_refresh"] == ["white"] and ticks["nightly_audit_refresh"] == []
    _run(audited, "prompts_job", "white")
    requests = _tick(audited, schedules.nightly_audit_refresh)
    assert [(str(r.partition_key), r.tags["qos/reason"]) for r in requests] == [(f"white|{audited['key']}", "prompts changed")]
    _run(audited, "audit_job", requests[0].partition_key)
    assert _all_ticks(audited)["nightly_metrics_refresh"] == ["-"]  # tables now older than the data
    _run(audited, "metrics_job")
    assert _all_ticks(audited) == {s.name: [] for s in schedules.schedules}


def test_changed_model_version_regenerates(audited):
    config = audited["tmp"] / "ckpt-s" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "qos_note": "retrained"}))
    requests = _tick(audited, schedules.nightly_audit_refresh)
    assert [r.tags["qos/reason"] for r in requests] == ["model version changed"]
    assert resolve(audited["key"], audited["audit"].paths()).version in requests[0].run_key
    assert _tick(audited, schedules.nightly_prompts_refresh) == []


def test_new_judge_version_rejudges_only(audited):
    staged = partition_file(audited["audit"].paths().staging, "judgments", "white", audited["key"], RULES)
    staged.rename(staged.with_name("rules-v0.parquet"))  # labelled by an older rubric only
    ticks = _all_ticks(audited)
    assert ticks["nightly_judge_refresh"] == [f"white|{audited['key']}"] and ticks["nightly_audit_refresh"] == []
    _run(audited, "judge_job", model_group_key(audited["key"], "white"))
    assert _tick(audited, schedules.nightly_judge_refresh) == []


def test_schedules_are_off_by_default():
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.schedules)
