"""`qos run` end to end on the embedded SmolLM2 model (real HF model, real Dagster instance, real DuckDB)."""

from __future__ import annotations

import shutil

import duckdb
import dagster as dg
import pytest

from qos_pipeline.cli import main
from tests.paths import ROOT


@pytest.mark.slow
def test_qos_run_on_embedded_model(tmp_path, monkeypatch, capsys):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # the project's real instance config
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.chdir(tmp_path)
    main(["run", "--groups", "muslim", "white", "--samples", "2", "--max-new-tokens", "12"])
    out = capsys.readouterr().out
    assert "Label shares per model" in out and "Disparities vs reference group 'white'" in out
    with duckdb.connect(str(tmp_path / "wh" / "qos.duckdb"), read_only=True) as con:
        gens = con.execute("SELECT model_key, count(*), count(DISTINCT name_group), min(length(response)) "
                           "FROM generations GROUP BY 1").fetchall()
        rates = con.execute("SELECT sum(rate) FROM label_rates_group GROUP BY name_group").fetchall()
    assert gens[0][0] == "smollm2-135m-instruct" and gens[0][1] == 2 * 16 * 2 and gens[0][2] == 2
    assert all(abs(r[0] - 1) < 1e-9 for r in rates)
    instance = dg.DagsterInstance.get()
    assert instance.get_dynamic_partitions("model") == ["smollm2-135m-instruct"]
    runs = instance.get_runs()
    assert len(runs) == 2 + 2 + 1 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert (home / "storage").is_dir() and not (tmp_path / "storage").exists()  # state stays in DAGSTER_HOME


def test_cli_reports_bad_design_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    with pytest.raises(SystemExit) as exc:
        main(["run", "--design", "no-such-design"])
    assert "unknown design 'no-such-design'" in str(exc.value)


def test_cli_reports_unknown_model_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    with pytest.raises(SystemExit) as exc:
        main(["run", "--model", "no-such-model"])
    assert "unknown model 'no-such-model'" in str(exc.value) and "smollm2-135m-instruct" in str(exc.value)


def test_report_without_warehouse_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    with pytest.raises(SystemExit) as exc:
        main(["report"])
    assert "qos run" in str(exc.value)


def test_qos_ingest_pilot_and_report(tmp_path, monkeypatch, capsys):
    from tests.paths import need_pilot

    csv = need_pilot()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    main(["ingest", str(csv), "--model", "llama-2-13b-chat", "--labels", "human"])
    main(["report", "--model", "llama-2-13b-chat", "--judge", "human"])
    out = capsys.readouterr().out
    overall = [line for line in out.splitlines() if line.startswith("llama-2-13b-chat") and " 2304 " in line][0]
    assert overall.split()[-7:] == ["73.7%", "5.3%", "0.2%", "14.9%", "1.3%", "4.6%", "0.0%"]
    mohammed = [line for line in out.splitlines() if " Mohammed " in line][0]
    assert "86.1%" in mohammed
    instance = dg.DagsterInstance.get()
    assert instance.get_dynamic_partitions("model") == ["llama-2-13b-chat"]
    # Ingest runs through the instance like generation: one audit run per group, then the warehouse build,
    # with the same asset checks, so the UI shows their lineage and check results.
    runs = instance.get_runs()
    assert sorted(r.job_name for r in runs) == ["audit_job"] * 5 + ["metrics_job"]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    records = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    checks = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    passed = {(c.asset_key.to_user_string(), c.check_name) for c in checks if c.passed}
    assert {("generations", "generations_schema"), ("generations", "generations_complete"),
            ("judgments", "judgments_labels_in_taxonomy")} <= passed
    for asset in ("generations", "judgments"):
        assert len(instance.get_materialized_partitions(dg.AssetKey(asset))) == 5
