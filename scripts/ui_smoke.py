"""Start `qos ui` for this project on loopback, check what the UI shows, materialize partitions
through the UI's GraphQL API (the same call as the Materialize button), wait for the runs, stop by PID.

    .venv/bin/python scripts/ui_smoke.py [--port 3333] [--model KEY] [--group white]

Prints one line per check and exits non-zero on the first failure. The model partition must exist
(`qos run` or `qos ingest` adds it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from qos_pipeline.cli.common import dagster_home
from qos_pipeline.cli.ui import ui_command
from qos_pipeline.settings import PROJECT_ROOT as ROOT

ASSETS_QUERY = """{ assetNodes { assetKey { path } groupName description
  partitionDefinition { type dimensionTypes { name type } }
  assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""
WORKSPACE_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on RepositoryLocation { repositories { name } }
  ... on PythonError { message } } } } } }"""
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""
RUN_QUERY = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
CHECKED = {"prompts", "generations", "judgments", "metric_tables", "judge_validations"}  # each has asset checks
ASSETS = CHECKED | {"toxicity"}  # toxicity: optional, off unless run config names a classifier
SOURCES = {"prompt_designs", "model_sources", "judge_definitions"}  # observable: versioned, never materialized


def gql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        out = json.load(resp)
    if "errors" in out:
        raise RuntimeError(f"GraphQL error: {out['errors']}")
    return out["data"]


def start(port: int, log: Path) -> subprocess.Popen:
    """`qos ui`'s command in its own process group (so stop() reaches the daemon and run workers too)."""
    dagster_home()
    return subprocess.Popen(ui_command("127.0.0.1", port), cwd=ROOT, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_up(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"qos ui exited with {proc.returncode}")
        try:
            entries = gql(port, WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["locationOrLoadError"]:
                return
        except OSError:
            pass
        time.sleep(2)
    raise TimeoutError(f"qos ui did not answer on port {port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def materialize(port: int, location: str, asset_keys: list[str], checks: dict[str, list[str]],
                partition: str | None, timeout: float = 600) -> str:
    """Launch like the UI's Materialize button (the implicit asset job with the assets' checks and a
    partition tag); wait for the run to end."""
    params = {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                           "jobName": "__ASSET_JOB", "assetSelection": [{"path": [k]} for k in asset_keys],
                           "assetCheckSelection": [{"assetKey": {"path": [k]}, "name": c}
                                                   for k in asset_keys for c in checks[k]]},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}] if partition else []}}
    launched = gql(port, LAUNCH, {"p": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launch of {asset_keys} [{partition}] failed: {launched}")
    run_id = launched["run"]["runId"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = gql(port, RUN_QUERY, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(3)
    raise TimeoutError(f"run {run_id} still {status} after {timeout} s")


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=3333)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--group", default="white")
    args = ap.parse_args()
    log = dagster_home() / "ui_smoke.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = start(args.port, log)
    print(f"qos ui pid {proc.pid}, log {log}")
    try:
        t0 = time.time()
        wait_up(args.port, proc)
        print(f"UI up after {time.time() - t0:.0f} s on http://127.0.0.1:{args.port}")
        entry = gql(args.port, WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"][0]
        check(entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", f"code location {entry['name']} loads")
        nodes = {"/".join(n["assetKey"]["path"]): n for n in gql(args.port, ASSETS_QUERY)["assetNodes"]}
        check(set(nodes) == ASSETS | SOURCES, f"assets shown: {sorted(nodes)}")
        dims = nodes["generations"]["partitionDefinition"]["dimensionTypes"]
        check({(d["name"], d["type"]) for d in dims} == {("model", "DYNAMIC"), ("group", "STATIC")},
              f"generations partitioned by {dims}")
        checks = {a: [c["name"] for c in nodes[a]["assetChecksOrError"]["checks"]] for a in ASSETS}
        check(all(checks[a] for a in CHECKED), f"asset checks shown: {checks}")
        check(all(n["description"] for n in nodes.values()), "every asset has its docstring as description")
        status = materialize(args.port, entry["name"], ["prompts"], checks, args.group)
        check(status == "SUCCESS", f"materialize prompts[{args.group}] from the UI API: {status}")
        key = f"{args.group}|{args.model}"  # multi-partition keys join dimensions in name order
        status = materialize(args.port, entry["name"], ["generations", "judgments"], checks, key)
        check(status == "SUCCESS", f"materialize generations+judgments[{key}] from the UI API: {status}")
        status = materialize(args.port, entry["name"], ["metric_tables"], checks, None)
        check(status == "SUCCESS", f"materialize metric_tables from the UI API: {status}")
    finally:
        stop(proc)
        print(f"qos ui stopped (exit {proc.returncode})")


if __name__ == "__main__":
    main()
