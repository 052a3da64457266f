"""The one Dagster entry point: ``dagster dev -m qos_pipeline.definitions`` (see README)."""

import dagster as dg

from qos_pipeline.defs import generation, jobs, judging, metrics, prompts, schedules, sensors
from qos_pipeline.defs.executors import executor_from_env
from qos_pipeline.defs.partitions import REFERENCE_GROUP
from qos_pipeline.defs.resources import AuditConfig, GeneratorResource


def build_definitions(generator: dg.ConfigurableResource | None = None, audit: AuditConfig | None = None,
                      executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """Definitions with the real generator by default; tests pass a fake with the same interface.
    ``executor``: None = ``QOS_EXECUTOR`` (Celery) or Dagster's default executor."""
    return dg.Definitions(
        assets=[prompts.prompts, generation.generations, judging.judgments, metrics.metric_tables,
                judging.judge_validations],
        jobs=[jobs.prompts_job, jobs.audit_job, jobs.metrics_job, *schedules.jobs],
        sensors=sensors.sensors,
        schedules=schedules.schedules,
        executor=executor or executor_from_env(),
        resources={
            "audit": audit or AuditConfig.from_env(REFERENCE_GROUP),
            "generator": generator or GeneratorResource(),
        },
    )


defs = build_definitions()
