"""What the UI shows of a check comes from the instance's event log: each ASSET_CHECK_EVALUATION must name
the partition it checked and the materialization of its own run (not the partition's previous one, nor
none), and a blocked step's evaluations must name no materialization, since it wrote nothing."""

from __future__ import annotations

import dagster as dg
import pytest

from qos_pipeline.defs.partitions import model_group_key
from tests.fakes import FakeGeneratorResource, fake_definitions

MODEL = "fake-model"


@pytest.fixture()
def env(tmp_path):
    defs, paths = fake_definitions(tmp_path / "wh", design="demo", samples=1)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("model", [MODEL])
        yield defs, instance, paths


def _run(defs, instance, job, key=None) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key, raise_on_error=False)


def _evaluations(instance) -> list[tuple[str, dg.AssetCheckEvaluation]]:
    records = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    return [(r.event_log_entry.run_id, r.event_log_entry.dagster_event.event_specific_data) for r in records]


def _materialization(instance, asset: dg.AssetKey, storage_id: int):
    """The materialization of ``asset`` stored under ``storage_id`` (what the UI links a check to)."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset, storage_ids=[storage_id]),
                                              limit=1).records
    assert records, f"no materialization of {asset.to_user_string()} has storage id {storage_id}"
    return records[0]


def test_every_check_evaluation_targets_its_own_runs_materialization_and_partition(env):
    defs, instance, _ = env
    # Each partition twice, interleaved with another: a check yielded before its materialization would
    # target the partition's previous run (or none on the first), or the other partition's latest run.
    runs = []
    for group in ("white", "muslim", "white"):
        runs.append(_run(defs, instance, "prompts_job", group))
    for group in ("white", "muslim", "white"):
        runs.append(_run(defs, instance, "audit_job", model_group_key(MODEL, group)))
    runs.append(_run(defs, instance, "metrics_job"))
    assert all(r.success for r in runs)
    evaluations = _evaluations(instance)
    assert {e.asset_key for _, e in evaluations} == {dg.AssetKey(a) for a in
                                                    ("prompts", "generations", "judgments", "metric_tables")}
    for run_id, evaluation in evaluations:
        partition = instance.get_run_by_id(run_id).tags.get("dagster/partition")
        where = f"{evaluation.check_name} of run {run_id}"
        assert evaluation.partition == partition, where
        target = evaluation.target_materialization_data
        assert target is not None, f"{where} targets no materialization"
        target_record = _materialization(instance, evaluation.asset_key, target.storage_id)
        assert target.run_id == target_record.run_id == run_id, where
        assert target_record.partition_key == partition, where
    # one evaluation of every check per run that materialized its asset
    per_run = {(run_id, e.asset_key, e.check_name) for run_id, e in evaluations}
    assert len(per_run) == len(evaluations)
    assert len(evaluations) == 3 * 2 + 3 * (3 + 2) + len(defs.resolve_assets_def("metric_tables").check_specs)


def test_a_blocked_steps_checks_name_its_partition_and_no_materialization(env):
    defs, instance, paths = env
    key = model_group_key(MODEL, "white")
    assert _run(defs, instance, "prompts_job", "white").success
    good = _run(defs, instance, "audit_job", key)
    assert good.success
    bad, _ = fake_definitions(paths.warehouse, FakeGeneratorResource(broken=True), design="demo", samples=1)
    blocked = _run(bad, instance, "audit_job", key)
    assert not blocked.success
    mine = [e for run_id, e in _evaluations(instance) if run_id == blocked.run_id]
    assert {e.check_name for e in mine} == {"generations_schema", "generations_complete",
                                            "generations_responses_nonempty"}
    assert not next(e for e in mine if e.check_name == "generations_schema").passed
    for evaluation in mine:
        assert evaluation.partition == str(key) and evaluation.target_materialization_data is None
        assert "previous materialization" in evaluation.metadata["written"].value
    # the partition's latest materialization is still the good run's: the stored data was kept
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("generations"), asset_partitions=[str(key)]), limit=1).records
    assert latest[0].run_id == good.run_id
