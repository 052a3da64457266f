"""The checkpoint regression gate as an asset check of ``metric_tables``, and the sensor that tells someone
when it has a verdict.

``metric_tables_checkpoint_regression`` is evaluated by every published build (``metrics/gate.py``): for the
newest checkpoint of each family, whether a primary gap grew against the previous checkpoint beyond noise
or passed the ceiling. It never stops the build (the trend must stay readable); its severity is the
``gate`` resource's (warning by default). Its metadata carry the verdict as JSON.

``regression_alert_sensor`` watches successful runs; when a run evaluated the gate, it hands the verdict to
the ``alerts`` resource's file and/or command (``QOS_ALERT_FILE``, ``QOS_ALERT_COMMAND``). On by default;
it does nothing until one of them is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import dagster as dg

from qos_pipeline.alerts import deliver
from qos_pipeline.defs.resources import Alerts, RegressionGate
from qos_pipeline.metrics import gate
from qos_pipeline.metrics.publish import connect_readonly
from qos_pipeline.tables.checks import METRIC_TABLES_CHECKPOINT_REGRESSION

GATE_CHECK = METRIC_TABLES_CHECKPOINT_REGRESSION


def _failures_md(verdict: gate.Verdict) -> str:
    rows = [(f.family, f.checkpoint_order, x) for f in verdict.families for x in f.failures]
    if not rows:
        return "no failure"
    lines = ["| family | checkpoint | group | why |", "|---|---:|---|---|"]
    lines += [f"| {fam} | {order} | {x['group']} | {x['text']} |" for fam, order, x in rows]
    for _, order, x in rows:
        for ex in x.get("examples", []):
            lines.append(f"\n- {x['group']} @ {order}: {ex['prompt']!r} {ex['before']} -> {ex['after']}: "
                         f"{ex['response'][:160]!r}")
    return "\n".join(lines)


def gate_result(db: Path, settings: RegressionGate) -> dg.AssetCheckResult:
    """The gate's evaluation on the published warehouse ``db``."""
    with connect_readonly(db) as con:
        verdict = gate.evaluate(con, settings.settings())
    record = verdict.to_json()
    return dg.AssetCheckResult(
        check_name=GATE_CHECK, passed=verdict.passed, severity=settings.check_severity(),
        description=verdict.summary()[:2000],
        metadata={"verdict": dg.MetadataValue.json(record), "families": len(verdict.families),
                  "failed_families": sum(not f.passed for f in verdict.families),
                  "level": verdict.level, "ceiling": verdict.ceiling,
                  "failures": dg.MetadataValue.md(_failures_md(verdict))})


def gate_verdicts(instance: dg.DagsterInstance, run_id: str) -> list[dict]:
    """The verdicts (JSON) of the gate evaluations of run ``run_id``."""
    found = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        data = entry.dagster_event.asset_check_evaluation_data if entry.dagster_event else None
        if data is not None and data.check_name == GATE_CHECK and "verdict" in data.metadata:
            found.append(cast(dict, data.metadata["verdict"].value))
    return found


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="regression_alert_sensor",
                      default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30)
def regression_alert_sensor(context: dg.RunStatusSensorContext, alerts: Alerts):
    """After each successful run that evaluated the checkpoint regression gate: appends its verdict as one
    JSON line to QOS_ALERT_FILE and/or runs QOS_ALERT_COMMAND (an argv list, no shell) with the verdict on
    its standard input (QOS_ALERT_ONLY_FAILURES=true: failed verdicts only). Does nothing while neither is set."""
    run = context.dagster_run
    verdicts = gate_verdicts(context.instance, run.run_id)
    argv = alerts.argv()
    if not verdicts:
        return dg.SkipReason(f"run {run.run_id[:8]} evaluated no regression gate")
    if not (argv or alerts.file):
        return dg.SkipReason("no alert configured: set QOS_ALERT_FILE or QOS_ALERT_COMMAND")
    sent = 0
    for verdict in verdicts:
        if alerts.failures_only() and verdict.get("passed"):
            continue
        record = {"run_id": run.run_id, "job": run.job_name, "check": GATE_CHECK, **verdict}
        for problem in deliver(record, argv, alerts.file):
            context.log.error(problem)
        sent += 1
    return dg.SkipReason(f"run {run.run_id[:8]}: {sent} verdict(s) delivered")
