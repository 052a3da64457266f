"""The one Dagster entry point: ``dagster dev -m qos_pipeline.definitions`` (see README)."""

import dagster as dg

from qos_pipeline.defs import (
    alerts,
    automation,
    generation,
    jobs,
    judging,
    metrics,
    prompts,
    runs,
    sensors,
    sources,
    toxicity,
)
from qos_pipeline.defs.executors import executor_from_env
from qos_pipeline.defs.resources import (
    Alerts,
    AuditSettings,
    CheckpointWatch,
    GeneratorResource,
    RegressionGate,
    Storage,
    from_env,
)


def build_definitions(generator: dg.ConfigurableResource | None = None, storage: Storage | None = None,
                      audit: AuditSettings | None = None, executor: dg.ExecutorDefinition | None = None
                      ) -> dg.Definitions:
    """Definitions with the real generator by default (tests pass a fake with the same interface), and
    resources whose fields come from the ``QOS_*`` variables unless given. ``executor``: None =
    ``QOS_EXECUTOR`` (Celery) or Dagster's default executor."""
    return dg.Definitions(
        assets=[sources.prompt_designs, sources.model_sources, sources.judge_definitions, prompts.prompts,
                generation.generations, judging.judgments, judging.judge_validations, metrics.metric_tables,
                toxicity.toxicity],
        jobs=[jobs.prompts_job, jobs.audit_job, jobs.judge_job, jobs.metrics_job],
        sensors=[sensors.checkpoint_sensor, automation.automation_sensor, runs.dead_runs_sensor,
                 alerts.regression_alert_sensor],
        executor=executor or executor_from_env(),
        resources={
            "storage": storage or from_env(Storage),
            "audit": audit or from_env(AuditSettings),
            "checkpoint_watch": from_env(CheckpointWatch),
            "generator": generator or from_env(GeneratorResource),
            "gate": from_env(RegressionGate),
            "alerts": from_env(Alerts),
        },
    )


defs = build_definitions()
