"""`qos ui` against forged requests, for real: the UI (webserver + daemon) on loopback refuses a GET mutation,
a foreign Host (DNS rebinding) and a foreign Origin (a page of another site), over HTTP and WebSocket, and runs
none of them; a second `qos ui` on the busy port exits 1 at once naming the port and its user, and one on
another port refuses to start a second daemon for the same instance."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
from urllib.parse import quote

import dagster as dg
import pytest

from tests.paths import ROOT, free_port, load_script

ui_smoke = load_script("scripts/ui_smoke.py")
ADD = 'mutation { addDynamicPartition(partitionsDefName: "model", partitionKey: "%s", repositorySelector: ' \
      '{repositoryName: "__repository__", repositoryLocationName: "%s"}) { __typename } }'


def _request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    return response.status, response.read().decode()


def _qos_ui(port, env):
    return subprocess.run([sys.executable, "-c", "from qos_pipeline.cli import main; main()", "ui", "--port",
                           str(port)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_the_ui_refuses_forged_requests_and_a_second_ui(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    port = free_port()
    proc = ui_smoke.start(port, tmp_path / "ui.log")
    try:
        ui_smoke.wait_up(port, proc)
        location = ui_smoke.gql(port, ui_smoke.WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"][0]["name"]
        refused = {
            "GET mutation": _request(port, "GET", "/graphql?query=" + quote(ADD % ("by-get", location))),
            "foreign Host": _request(port, "POST", "/graphql", json.dumps({"query": ADD % ("by-host", location)}),
                                     {"Host": "attacker.example"}),
            "foreign Origin": _request(port, "POST", "/graphql", json.dumps({"query": ADD % ("by-origin", location)}),
                                       {"Origin": "http://attacker.example"}),
            "WebSocket from another site": _request(port, "GET", "/graphql", None, {
                "Origin": "http://attacker.example", "Connection": "Upgrade", "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": "graphql-ws"}),
        }
        assert {k: status for k, (status, _) in refused.items()} == {k: 403 for k in refused}, refused
        assert "request guard: a GraphQL mutation sent with GET" in refused["GET mutation"][1]
        # the UI's own kind of request still works: a POST from a local tool
        assert ui_smoke.gql(port, ADD % ("allowed", location))["addDynamicPartition"]["__typename"]
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert instance.get_dynamic_partitions("model") == ["allowed"]  # none of the forged ones ran

        env = {**dict(__import__("os").environ)}
        second = _qos_ui(port, env)  # before, it printed "address already in use" and ran on, daemon and all
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1].startswith(f"qos ui: port {port} on 127.0.0.1 is in use by pid ")
        other = _qos_ui(free_port(), env)
        assert other.returncode == 1 and "a Dagster daemon already serves this instance" in other.stderr
    finally:
        ui_smoke.stop(proc)
