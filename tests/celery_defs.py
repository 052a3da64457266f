"""Definitions for the Celery test: the project's assets and jobs with the fake generator and the Celery
executor. Celery workers import this module (``tests.celery_defs``) to rebuild each step, so everything
it needs comes from the environment the test gives workers and orchestrator alike."""

from __future__ import annotations

import os
import time

import dagster as dg

from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs.executors import celery_executor
from qos_pipeline.defs.resources import AuditSettings
from tests.fakes import FakeGeneratorResource


class SlowFakeGeneratorResource(FakeGeneratorResource):
    """The fake generator, holding its worker for ``delay_s`` like a model load: while one worker is busy
    with one partition, the next partition's step goes to the other worker."""

    delay_s: float = 0.0

    def build(self, source, compile: bool = False, decoder: str | None = None):
        time.sleep(self.delay_s)
        return super().build(source, compile)


defs = build_definitions(
    generator=SlowFakeGeneratorResource(delay_s=float(os.environ.get("QOS_TEST_GENERATION_DELAY_S", "0"))),
    audit=AuditSettings(design="demo", samples=1),  # storage: QOS_WAREHOUSE, set by the test for every process
    executor=celery_executor(),
)


def prompts_job() -> dg.JobDefinition:
    return defs.resolve_job_def("prompts_job")


def audit_job() -> dg.JobDefinition:
    return defs.resolve_job_def("audit_job")


def metrics_job() -> dg.JobDefinition:
    return defs.resolve_job_def("metrics_job")
