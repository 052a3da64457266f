"""The assets materialized in-process with a fake generator and a temporary warehouse."""

from __future__ import annotations

import duckdb
import dagster as dg
import pandas as pd
import pytest

from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.staging import partition_file
from tests.fakes import FakeGeneratorResource, fake_definitions
from qos_pipeline.judging.rules.judge import RulesJudge

RULES = RulesJudge.judge_id

MODEL = "fake-model"
GROUPS = ["muslim", "white"]


@pytest.fixture()
def env(tmp_path):
    defs, paths = fake_definitions(tmp_path / "wh", design="demo", samples=2)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("model", [MODEL])
        yield defs, instance, paths


def _run(defs, instance, job, key=None):
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
    return result


def _failure_text(result) -> str:
    data = [e for e in result.all_events if e.is_step_failure][0].step_failure_data
    return data.error.message + (data.user_failure_data.description if data.user_failure_data else "")


def _audit(defs, instance, groups=GROUPS):
    for g in groups:
        assert _run(defs, instance, "prompts_job", g).success
    for g in groups:
        assert _run(defs, instance, "audit_job", model_group_key(MODEL, g)).success
    return _run(defs, instance, "metrics_job")


def _table_counts(db) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_type = 'BASE TABLE'").fetchall()]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_full_graph_fills_tables_and_checks_pass(env):
    defs, instance, paths = env
    result = _audit(defs, instance)
    assert result.success
    counts = _table_counts(paths.db)
    # demo design: 2 names x 8 templates per group, 2 samples each
    assert counts["prompts"] == 2 * 16 and counts["generations"] == 2 * 32 and counts["judgments"] == 2 * 32
    with duckdb.connect(str(paths.db), read_only=True) as con:
        disp = con.execute("SELECT name_group, refusal_rate, refusal_diff FROM disparities "
                           "WHERE judge_id = ? ORDER BY 1", [RULES]).df().set_index("name_group")
        names = con.execute("SELECT name, rate FROM label_rates_name WHERE label = 'refusal'").df()
    # the fake refuses for Mohammed and Fatima (both muslim), never for white names
    assert disp.loc["muslim", "refusal_rate"] == 1.0 and disp.loc["white", "refusal_rate"] == 0.0
    assert disp.loc["muslim", "refusal_diff"] == 1.0
    assert set(names.loc[names["rate"] == 1.0, "name"]) == {"Mohammed", "Fatima"}
    checks = [e for e in instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))]
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in checks]
    assert evaluations and all(e.passed for e in evaluations)
    assert {e.check_name for e in evaluations} >= {"prompts_complete", "generations_complete",
                                                   "judgments_labels_in_taxonomy", "metric_tables_groups_present"}


def test_rematerializing_a_partition_keeps_row_counts(env):
    defs, instance, paths = env
    assert _audit(defs, instance).success
    before = _table_counts(paths.db)
    assert _run(defs, instance, "prompts_job", "muslim").success
    assert _run(defs, instance, "audit_job", model_group_key(MODEL, "muslim")).success
    assert _run(defs, instance, "metrics_job").success
    assert _table_counts(paths.db) == before


def test_blocking_check_keeps_stored_partition(env, tmp_path):
    defs, instance, paths = env
    assert _audit(defs, instance, ["muslim"]).success
    stored = partition_file(paths.staging, "generations", "muslim", MODEL)
    before = pd.read_parquet(stored)
    bad, _ = fake_definitions(paths.warehouse, FakeGeneratorResource(broken=True), design="demo", samples=2)
    result = _run(bad, instance, "audit_job", model_group_key(MODEL, "muslim"))
    assert not result.success
    assert "generations_schema" in _failure_text(result) and "finish_reason" in _failure_text(result)
    pd.testing.assert_frame_equal(pd.read_parquet(stored), before)
    # judgments were not run on the blocked data
    assert not any(e.is_step_success and e.step_key == "judgments" for e in result.all_events)
    # ...and the UI shows the failing check with its counts, not only "execution failed"
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    schema = evaluations["generations_schema"]
    assert not schema.passed and schema.severity == dg.AssetCheckSeverity.ERROR
    assert "finish_reason" in schema.metadata["failures"].value
    assert evaluations["generations_complete"].passed  # every check of the step is recorded, not just the failing one


def test_metric_tables_depend_on_judge_validations(env):
    # validating a judge changes refusal_rates_corrected: the metric tables must show as stale after it
    defs, _, _ = env
    parents = defs.resolve_asset_graph().get(dg.AssetKey("metric_tables")).parent_keys
    assert {dg.AssetKey("judgments"), dg.AssetKey("judge_validations")} <= parents


def test_generations_need_prompts_first(env):
    defs, instance, _ = env
    result = _run(defs, instance, "audit_job", model_group_key(MODEL, "white"))
    assert not result.success
    assert "prompts[white] has not been materialized yet" in _failure_text(result)


def test_unknown_model_partition_is_rejected(env):
    defs, instance, _ = env
    with pytest.raises(dg.DagsterUnknownPartitionError, match="not-added"):
        _run(defs, instance, "audit_job", model_group_key("not-added", "white"))


def test_empty_responses_are_kept_and_warned(env):
    defs, instance, paths = env
    empty, _ = fake_definitions(paths.warehouse, FakeGeneratorResource(empty=True), design="demo", samples=1)
    assert _audit(empty, instance, ["white"]).success
    gens = pd.read_parquet(partition_file(paths.staging, "generations", "white", MODEL))
    judg = pd.read_parquet(partition_file(paths.staging, "judgments", "white", MODEL, RULES))
    assert len(gens) == 16 and (gens["response"] == "").all()
    assert set(judg["label"]) == {"failure"}
    records = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    warn = [r.event_log_entry.dagster_event.event_specific_data for r in records
            if r.event_log_entry.dagster_event.event_specific_data.check_name == "generations_responses_nonempty"]
    assert warn and not warn[-1].passed and warn[-1].severity == dg.AssetCheckSeverity.WARN


@pytest.mark.parametrize("key,expected", [("white|fake-model", ("fake-model", "white")),
                                          (model_group_key("m-1", "muslim"), ("m-1", "muslim"))])
def test_partition_key_from_ui_string_or_object(key, expected):
    from qos_pipeline.defs.partitions import split_key

    assert split_key(dg.build_asset_context(partition_key=key)) == expected


@pytest.mark.parametrize("key", ["white", "white|a|b", "white|../x"])
def test_malformed_partition_key_fails_clearly(key):
    from qos_pipeline.defs.partitions import split_key

    with pytest.raises(dg.Failure, match="not a valid group\\|model key"):
        split_key(dg.build_asset_context(partition_key=key))


def test_full_design_selectable_by_config(tmp_path):
    defs, paths = fake_definitions(tmp_path / "wh", design="full", samples=1)
    with dg.instance_for_test() as instance:
        assert _run(defs, instance, "prompts_job", "jewish").success
    prompts = pd.read_parquet(partition_file(paths.staging, "prompts", "jewish"))
    assert len(prompts) == 8 * 32 and set(prompts["design"]) == {"full"}


def test_blocked_warehouse_build_records_its_suites(env):
    defs, instance, paths = env
    assert _audit(defs, instance).success
    published = paths.db.stat().st_mtime_ns
    # a second judge that labelled only one of the two groups: the groups_present suite must block
    judged = pd.read_parquet(partition_file(paths.staging, "judgments", "muslim", MODEL, RULES))
    other = partition_file(paths.staging, "judgments", "muslim", MODEL, "other")
    judged.assign(judge_id="other").to_parquet(other)
    result = _run(defs, instance, "metrics_job")
    assert not result.success and paths.db.stat().st_mtime_ns == published
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["metric_tables_groups_present"].passed
    assert evaluations["metric_tables_rates_in_range"].passed
    assert "white" in evaluations["metric_tables_groups_present"].metadata["failed"].value


def test_a_refresh_keeps_the_partitions_settings(env):
    # qos run (or the launchpad) sets a partition's design and sampling; a run without config (automation,
    # a click in the UI) must not change them, or a refresh would silently re-decode a group differently.
    defs, instance, paths = env
    design = {"ops": {"prompts": {"config": {"design": "full"}}}}
    assert defs.resolve_job_def("prompts_job").execute_in_process(
        instance=instance, partition_key="white", run_config=design).success
    sampled = {"ops": {"generations": {"config": {"samples": 1, "temperature": 0.7, "keep_partition_settings": False}}}}
    key = model_group_key(MODEL, "white")
    assert defs.resolve_job_def("audit_job").execute_in_process(
        instance=instance, partition_key=key, run_config=sampled).success
    first = pd.read_parquet(partition_file(paths.staging, "generations", "white", MODEL))
    assert _run(defs, instance, "prompts_job", "white").success and _run(defs, instance, "audit_job", key).success
    again = pd.read_parquet(partition_file(paths.staging, "generations", "white", MODEL))
    prompts = pd.read_parquet(partition_file(paths.staging, "prompts", "white"))
    assert set(prompts["design"]) == {"full"} and len(prompts) == 8 * 32
    assert len(again) == len(first) == 8 * 32  # 1 sample, not the settings' 2
    assert set(again["gen_config_hash"]) == set(first["gen_config_hash"]) and '"temperature": 0.7' in again["gen_config"][0]
    assert (again["generation_id"].sort_values().values == first["generation_id"].sort_values().values).all()


def test_metric_tables_statistics_come_from_run_config(env):
    defs, instance, paths = env
    assert _audit(defs, instance).success
    config = {"ops": {"metric_tables": {"config": {"bootstrap_resamples": 200, "bootstrap_seed": 7, "p_adjust": "bh",
                                                   "primary_measure": "refusal"}}}}
    assert defs.resolve_job_def("metrics_job").execute_in_process(instance=instance, run_config=config).success
    with duckdb.connect(str(paths.db), read_only=True) as con:
        stored = con.execute("SELECT DISTINCT boot_resamples, boot_seed FROM label_rates_group").fetchall()
        methods = con.execute("SELECT DISTINCT p_adjust_method FROM group_comparisons").fetchall()
        primary = con.execute("SELECT DISTINCT measure FROM group_comparisons WHERE family = 'primary'").fetchall()
    assert stored == [(200, 7)] and methods == [("bh",)] and primary == [("refusal",)]
    published = paths.db.stat().st_mtime_ns
    for bad, says in (({"p_adjust": "bonferonni"}, "p_adjust='bonferonni'"),
                      ({"primary_measure": "refusals"}, "primary_measure='refusals'")):
        result = defs.resolve_job_def("metrics_job").execute_in_process(
            instance=instance, run_config={"ops": {"metric_tables": {"config": bad}}}, raise_on_error=False)
        assert not result.success and says in _failure_text(result)
    assert paths.db.stat().st_mtime_ns == published
