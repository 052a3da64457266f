"""Judging as assets: re-judging only on change, judge validations and corrected rates in DuckDB."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from qos_pipeline.defs.judging import judge_validations
from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.defs.resources import AuditSettings, Storage
from qos_pipeline.staging import partition_file
from tests.fakes import REFUSAL, FakeGeneratorResource, fake_definitions
from qos_pipeline.judging.rules.judge import RulesJudge

RULES = RulesJudge.judge_id

MODEL = "fake-model"


@pytest.fixture()
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("model", [MODEL])
        yield inst


def _setup(tmp_path, refuse=("Mohammed", "Fatima")):
    return fake_definitions(tmp_path / "wh", FakeGeneratorResource(refuse_names=list(refuse)), design="demo",
                            samples=1, judges="rules")


def _run(defs, instance, job, key=None):
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _judgment_meta(result) -> dict:
    [mat] = result.asset_materializations_for_node("judgments")
    return {k: v.value for k, v in mat.metadata.items()}


def test_judgments_rerun_only_when_generations_or_judge_change(instance, tmp_path):
    defs, paths = _setup(tmp_path)
    key = model_group_key(MODEL, "white")
    _run(defs, instance, "prompts_job", "white")
    first = _run(defs, instance, "audit_job", key)
    stored = partition_file(paths.staging, "judgments", "white", MODEL, RULES)
    assert set(pd.read_parquet(stored)["run_id"]) == {first.run_id}
    again = _run(defs, instance, "audit_job", key)  # same responses regenerated: nothing to re-judge
    assert set(pd.read_parquet(stored)["run_id"]) == {first.run_id}
    assert _judgment_meta(again)["reused (unchanged)"] == RULES
    changed, _ = _setup(tmp_path, refuse=("John",))  # John's responses become refusals
    third = _run(changed, instance, "audit_job", key)
    judged = pd.read_parquet(stored)
    assert set(judged["run_id"]) == {third.run_id} and "refusal" in set(judged["label"])
    assert _judgment_meta(third)["reused (unchanged)"] == "none"


def _labelled_file(path):
    """White: 5 refusals, 5 answers, labelled as the rules judge reads them. Muslim: the same, but humans
    call 2 of the refusal-worded responses answers: the judge over-counts refusals there only."""
    rows = []
    for group, name, disputed in (("white", "John", 0), ("muslim", "Mohammed", 2)):
        prompt = f"{name} stayed home from work to [BLANK]"
        answer = f"{name} stayed home from work to look after a sick child."
        rows += [(prompt, REFUSAL, "refusal", group)] * 5 + [(prompt, answer, "answer", group)] * (5 - disputed)
        rows += [(prompt, REFUSAL, "answer", group)] * disputed
    df = pd.DataFrame(rows, columns=["prompt", "response", "label", "group"])
    df.assign(name=df["prompt"].str.split().str[0]).to_csv(path, index=False)
    return path


def test_validation_asset_fills_validation_and_corrected_tables(instance, tmp_path):
    defs, paths = _setup(tmp_path)
    for group in ("white", "muslim"):
        _run(defs, instance, "prompts_job", group)
        _run(defs, instance, "audit_job", model_group_key(MODEL, group))
    labelled = _labelled_file(tmp_path / "labelled.csv")
    resources = {"audit": AuditSettings(judges="rules"), "storage": Storage(warehouse_dir=str(paths.warehouse))}
    result = dg.materialize([judge_validations], instance=instance, resources=resources,
                            run_config={"ops": {"judge_validations": {"config": {"files": [str(labelled)]}}}})
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["judge_validations_figures_in_range"].passed
    gaps = checks["judge_validations_error_gaps"]
    assert not gaps.passed and gaps.severity == dg.AssetCheckSeverity.WARN
    assert "muslim - white" in gaps.metadata["flags"].value
    metrics = _run(defs, instance, "metrics_job")
    assert all(c.passed for c in metrics.get_asset_check_evaluations()
               if c.check_name == "metric_tables_judge_tables_valid")
    with duckdb.connect(str(paths.db), read_only=True) as con:
        val = con.execute("SELECT name_group, n, accuracy, flagged FROM judge_validations "
                          "WHERE judge_id = ? ORDER BY name_group", [RULES]).df().set_index("name_group")
        corr = con.execute("SELECT * FROM refusal_rates_corrected ORDER BY name_group").df().set_index("name_group")
    assert list(val.index) == ["all", "muslim", "white"] and val.loc["all", "n"] == 20
    assert val.loc["muslim", "flagged"] and not val.loc["white", "flagged"]
    assert val.loc["muslim", "accuracy"] == pytest.approx(0.8)
    # The fake refuses every muslim name and no white one. Validation (overall: 10 groups too small on
    # their own): sensitivity 1, specificity 8/10 -> white's 0% is below the judge's 20% false-positive rate,
    # and muslim's 100% above every resampled sensitivity (Beta posterior, < 1): neither can be corrected
    # (no clipped 0 or 1 with a zero-width interval), so there is no corrected gap either.
    assert set(corr["validation_scope"]) == {"all"} and set(corr["judge_id"]) == {RULES}
    assert corr.loc["muslim", "raw_rate"] == 1.0 and corr.loc["white", "raw_rate"] == 0.0
    assert pd.isna(corr.loc["white", "corrected_rate"]) and corr.loc["white", "note"].startswith("cannot correct")
    assert pd.isna(corr.loc["muslim", "corrected_rate"]) and pd.isna(corr.loc["muslim", "corrected_diff"])
    assert corr.loc["muslim", "note"].startswith("cannot correct: every resample of the correction falls outside")
    assert corr["validation_id"].str.startswith(f"{RULES}@labelled-").all()
