"""`dagster dev` on loopback serves the project's assets, partitions and checks, and a partition
materialized through the UI's API succeeds (runs in the daemon-launched run worker, a real HF checkpoint:
a tiny random Llama, so the test spends its time on the UI and the runs, not on decoding)."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pytest

from qos_pipeline.generation.models.source import register, resolve_source
from qos_pipeline.settings import Paths
from tests.paths import ROOT, free_port, load_script

ui_smoke = load_script("scripts/ui_smoke.py")


@pytest.mark.slow
def test_ui_serves_assets_and_materializes_a_partition(tmp_path, monkeypatch, tiny_llama_dir):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    for var, value in {"DAGSTER_HOME": str(home), "QOS_WAREHOUSE": str(tmp_path / "wh"), "QOS_SAMPLES": "1",
                       "QOS_MAX_NEW_TOKENS": "8"}.items():
        monkeypatch.setenv(var, value)
    paths = Paths.resolve(warehouse=tmp_path / "wh")
    model = register(resolve_source(str(tiny_llama_dir), paths), paths).key  # as `qos run --model`
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("model", [model])
    port = free_port()
    proc = ui_smoke.start(port, tmp_path / "dagster.log")
    try:
        ui_smoke.wait_up(port, proc)
        location = ui_smoke.gql(port, ui_smoke.WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"][0]["name"]
        nodes = {n["assetKey"]["path"][0]: n for n in ui_smoke.gql(port, ui_smoke.ASSETS_QUERY)["assetNodes"]}
        assert set(nodes) == ui_smoke.ASSETS | ui_smoke.SOURCES
        checks = {a: [c["name"] for c in nodes[a]["assetChecksOrError"]["checks"]] for a in ui_smoke.ASSETS}
        assert "generations_complete" in checks["generations"]
        assert ui_smoke.materialize(port, location, ["prompts"], checks, "white") == "SUCCESS"
        assert ui_smoke.materialize(port, location, ["generations", "judgments"], checks,
                                    f"white|{model}") == "SUCCESS"
        assert ui_smoke.materialize(port, location, ["metric_tables"], checks, None) == "SUCCESS"
    finally:
        ui_smoke.stop(proc)
    assert proc.returncode is not None
    with duckdb.connect(str(tmp_path / "wh" / "qos.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT name_group, n FROM label_rates_group WHERE label = 'answer'").fetchall()
    assert rows == [("white", 16)]  # demo design: 2 names x 8 templates, 1 sample
