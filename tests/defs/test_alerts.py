"""The alert hook and the gate's settings: the verdict goes to a file and a command (argv, no shell), a broken
command is reported without losing the file's line, bad settings are named; the sensor skips runs that
evaluated no gate and does nothing unconfigured."""

from __future__ import annotations

import json
import sys

import dagster as dg
import pytest

from qos_pipeline.alerts import deliver
from qos_pipeline.defs.alerts import regression_alert_sensor
from qos_pipeline.defs.resources import Alerts, RegressionGate

RECORD = {"passed": False, "summary": "run-7: checkpoint 3 ... FAILED; $(touch pwned)"}


def test_verdict_goes_to_the_file_and_to_the_command_without_a_shell(tmp_path):
    got = tmp_path / "got.json"
    script = f"import sys; open({str(got)!r}, 'w').write(sys.stdin.read())"
    argv = Alerts(command=json.dumps([sys.executable, "-c", script])).argv()
    assert deliver(RECORD, argv, str(tmp_path / "a" / "verdicts.jsonl")) == []
    assert deliver({**RECORD, "passed": True}, [], str(tmp_path / "a" / "verdicts.jsonl")) == []
    lines = [json.loads(line) for line in (tmp_path / "a" / "verdicts.jsonl").read_text().splitlines()]
    assert [line["passed"] for line in lines] == [False, True]
    assert json.loads(got.read_text()) == RECORD
    assert not (tmp_path / "pwned").exists() and not list(tmp_path.glob("pwned"))


def test_a_failing_command_is_reported_and_the_file_still_written(tmp_path):
    failing = [sys.executable, "-c", "import sys; print('channel closed', file=sys.stderr); sys.exit(2)"]
    problems = deliver(RECORD, failing, str(tmp_path / "v.jsonl"))
    assert problems == [f"alert command {sys.executable!r} exited 2: channel closed"]
    assert (tmp_path / "v.jsonl").read_text().count("\n") == 1
    [missing] = deliver(RECORD, ["/no/such/notify"], "")
    assert "not found; give its full path in QOS_ALERT_COMMAND" in missing


def test_settings_are_parsed_and_bad_ones_named():
    assert Alerts(command="notify-send 'qos gate'").argv() == ["notify-send", "qos gate"]
    assert Alerts().argv() == [] and Alerts(only_failures="TRUE").failures_only()
    with pytest.raises(ValueError, match="QOS_ALERT_COMMAND='\\[1, 2\\]'"):
        Alerts(command="[1, 2]").argv()
    with pytest.raises(ValueError, match="neither a JSON list nor shell words"):
        Alerts(command="[\"unclosed").argv()
    gate = RegressionGate(level="0.01", ceiling="0.1", severity="ERROR")
    assert (gate.settings().level, gate.settings().ceiling) == (0.01, 0.1)
    assert gate.check_severity() == dg.AssetCheckSeverity.ERROR and RegressionGate().settings().ceiling == 0
    with pytest.raises(ValueError, match="QOS_GATE_LEVEL='2'.*between 0 and 1"):
        RegressionGate(level="2").settings()
    with pytest.raises(ValueError, match="QOS_GATE_SEVERITY='loud': use warn or error"):
        RegressionGate(severity="loud").check_severity()


@dg.asset
def unrelated():
    return 1


def test_the_sensor_skips_runs_without_a_gate_and_unconfigured_alerts(tmp_path):
    with dg.instance_for_test() as instance:
        result = dg.materialize([unrelated], instance=instance)
        run = instance.get_run_by_id(result.run_id)
        [success] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
        context = dg.build_run_status_sensor_context(
            sensor_name="regression_alert_sensor", dagster_instance=instance, dagster_run=run,
            dagster_event=success.dagster_event, resources={"alerts": Alerts(file=str(tmp_path / "v.jsonl"))})
        assert "evaluated no regression gate" in regression_alert_sensor(context).skip_message
    assert not (tmp_path / "v.jsonl").exists()
