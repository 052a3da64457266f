"""What an operator reads in the UI, asked of `dagster dev` through its GraphQL API (what its pages query):
runs started by the `qos` commands are filed under the code location (Overview -> Timeline lists them),
every check has its description, and a check's executions name their own partition and the
materialization of their own run."""

from __future__ import annotations

import shutil
import time

import dagster as dg
import pytest

from qos_pipeline.cli.common import execute
from qos_pipeline.tables.checks import descriptions
from qos_pipeline.defs.partitions import model_group_key
from tests.fakes import fake_definitions
from tests.paths import ROOT, free_port, load_script

ui_smoke = load_script("scripts/ui_smoke.py")
MODEL = "fake-model"
RUNS = """{ runsOrError { ... on Runs { results { runId jobName
  repositoryOrigin { repositoryLocationName repositoryName } } } } }"""
CHECKS = """{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name description
  executionForLatestMaterialization { runId } } } } } }"""
REEXECUTE = """mutation($id: String!) { launchRunReexecution(reexecutionParams: {parentRunId: $id,
  strategy: ALL_STEPS}) { __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
EXECUTIONS = """query($key: AssetKeyInput!, $name: String!) { assetCheckExecutions(assetKey: $key, checkName: $name,
  limit: 20) { runId partition evaluation { partition targetMaterialization { runId } } } }"""


def _wait(port: int, run_id: str, timeout: float = 300) -> str:
    """The run's status once it ended (the daemon launches it in a process of its own)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = ui_smoke.gql(port, ui_smoke.RUN_QUERY, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise TimeoutError(f"run {run_id} still {status} after {timeout} s")


@pytest.mark.slow
def test_ui_files_command_runs_and_ties_checks_to_their_partition_and_run(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    defs, _ = fake_definitions(tmp_path / "wh", design="demo", samples=1)
    white, muslim = model_group_key(MODEL, "white"), model_group_key(MODEL, "muslim")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # as `qos run` does, in this process
        instance.add_dynamic_partitions("model", [MODEL])
        for group in ("white", "muslim"):
            execute(defs, "prompts_job", instance, group)
        for key in (white, muslim, white):  # white twice: its second run must not show the first one's
            execute(defs, "audit_job", instance, key)
        audits = [r.run_id for r in instance.get_runs(dg.RunsFilter(job_name="audit_job"))]  # newest first
        prompts_run = instance.get_runs(dg.RunsFilter(job_name="prompts_job"), limit=1)[0].run_id
    port = free_port()
    proc = ui_smoke.start(port, tmp_path / "dagster.log")
    try:
        ui_smoke.wait_up(port, proc)
        (entry,) = ui_smoke.gql(port, ui_smoke.WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
        (repository,) = entry["locationOrLoadError"]["repositories"]
        runs = ui_smoke.gql(port, RUNS)["runsOrError"]["results"]
        assert len(runs) == 5
        assert all(r["repositoryOrigin"] == {"repositoryLocationName": entry["name"],
                                             "repositoryName": repository["name"]} for r in runs)
        nodes = {n["assetKey"]["path"][0]: n["assetChecksOrError"]["checks"] for n in ui_smoke.gql(port, CHECKS)
                 ["assetNodes"] if n["assetChecksOrError"].get("checks")}
        described = {c["name"]: c["description"] for checks in nodes.values() for c in checks}
        assert described == descriptions()  # every check of every asset, with the README's words
        latest = {c["name"]: c["executionForLatestMaterialization"] for c in nodes["generations"]}
        assert latest["generations_complete"]["runId"] == audits[0]
        executions = ui_smoke.gql(port, EXECUTIONS, {"key": {"path": ["generations"]},
                                                     "name": "generations_complete"})["assetCheckExecutions"]
        assert sorted(e["runId"] for e in executions) == sorted(audits)
        for e in executions:
            key = str(muslim) if e["runId"] == audits[1] else str(white)
            assert e["partition"] == e["evaluation"]["partition"] == key
            assert e["evaluation"]["targetMaterialization"]["runId"] == e["runId"]
        # and a command's run can be re-executed from the UI (it needs the origin too)
        again = ui_smoke.gql(port, REEXECUTE, {"id": prompts_run})["launchRunReexecution"]
        assert again["__typename"] == "LaunchRunSuccess", again
        assert _wait(port, again["run"]["runId"]) == "SUCCESS"
    finally:
        ui_smoke.stop(proc)
