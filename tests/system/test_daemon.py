"""The checkpoint sensor under a real `dagster dev` (UI + daemon) on loopback: a tiny checkpoint dropped
into the watched folder ends as rows in DuckDB, and its regression gate's verdict in the alert file, with no
command but starting the sensors."""

from __future__ import annotations

import os

import duckdb
import pytest

from tests.paths import free_port, load_script

daemon_smoke = load_script("scripts/daemon_smoke.py")


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_sensor_turns_a_dropped_checkpoint_into_warehouse_rows(tmp_path, monkeypatch):
    for var in list(os.environ):  # run_smoke sets these for dagster dev; monkeypatch restores them after
        if var.startswith("QOS_") or var == "DAGSTER_HOME":
            monkeypatch.delenv(var)
    for var in daemon_smoke.prepare(tmp_path):
        monkeypatch.setenv(var, "")
    seen = daemon_smoke.run_smoke(tmp_path, free_port(), timeout=300)
    assert seen["exit"] is not None  # dagster dev was stopped by PID
    assert seen["partitions"] == [daemon_smoke.CHECKPOINT]
    # one group: its prompts (from the UI), its audit (the checkpoint sensor), the rebuild (automation)
    assert seen["runs"] == {"assets:prompts": ["SUCCESS"], "audit_job": ["SUCCESS"],
                            "assets:metric_tables": ["SUCCESS"]}
    with duckdb.connect(str(tmp_path / "wh" / "qos.duckdb"), read_only=True) as con:
        gens = con.execute("SELECT count(*), count(DISTINCT model_version) FROM generations WHERE model_key = ?",
                           [daemon_smoke.CHECKPOINT]).fetchone()
        rates = con.execute("SELECT sum(rate) FROM label_rates_model WHERE model_key = ?",
                            [daemon_smoke.CHECKPOINT]).fetchone()[0]
    assert gens == (4, 1)  # 2 names x 2 templates, 1 sample, one content version
    assert rates == pytest.approx(1.0)
    # the regression alert sensor saw the automation's rebuild (a run of the implicit asset job) and appended
    # its gate verdict; a one-group design has no gap, so nothing to gate (tests/defs/test_checkpoint_watch.py
    # has a failing gate)
    [alert] = seen["alerts"]
    assert alert["check"] == "metric_tables_checkpoint_regression" and alert["job"] == "__ASSET_JOB"
    assert alert["passed"] is True and alert["families"] == [] and alert["summary"].startswith("no checkpoint family")
