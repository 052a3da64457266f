"""Where steps run: in-process/multiprocess on one machine (Dagster's default), or on Celery workers on
several hosts (``QOS_EXECUTOR=celery``), with GPU steps routed to the ``gpu`` queue.

dagster-celery reads the op tag ``dagster-celery/queue`` of each step; steps without it go to the default
queue ``dagster``. Workers: ``dagster-celery worker start -A dagster_celery.app -y scripts/celery.yaml
-q gpu`` on GPU hosts, ``-q dagster`` elsewhere (docs/DEPLOY.md). dagster_celery is imported only when
the Celery executor is selected, so the default path does not load Celery.
"""

from __future__ import annotations

import os

import dagster as dg

QUEUE_TAG = "dagster-celery/queue"
GPU_QUEUE = "gpu"
DEFAULT_QUEUE = "dagster"  # dagster-celery's task_default_queue
EXECUTOR_ENV = "QOS_EXECUTOR"
BROKER_ENV, BACKEND_ENV = "QOS_CELERY_BROKER", "QOS_CELERY_BACKEND"
DEFAULT_BROKER, DEFAULT_BACKEND = "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1"
# A worker takes one step at a time and acknowledges it only when done: an idle worker on another host
# then picks up the next partition instead of a busy worker hoarding it, and a worker that dies mid-step
# leaves its step to be redelivered.
WORKER_SETTINGS = {"task_acks_late": True, "worker_prefetch_multiplier": 1,
                   "broker_connection_retry_on_startup": True}

GPU_STEP_TAGS = {QUEUE_TAG: GPU_QUEUE}
"""Op tags of steps that hold a GPU (generation)."""


JUDGE_STEP_TAGS = {QUEUE_TAG: DEFAULT_QUEUE}
"""Judging runs on the default queue; an LLM judge needs a GPU host's worker listening there too (see
docs/DEPLOY.md: ``-q gpu -q dagster``)."""


def celery_config(broker: str | None = None, backend: str | None = None) -> dict:
    """The Celery executor's config; workers must be started with the same broker (scripts/celery.yaml)."""
    return {"broker": broker or os.environ.get(BROKER_ENV) or DEFAULT_BROKER,
            "backend": backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND,
            "config_source": dict(WORKER_SETTINGS)}


def celery_executor(broker: str | None = None, backend: str | None = None) -> dg.ExecutorDefinition:
    """dagster-celery's executor with a Redis broker and result backend."""
    from dagster_celery import celery_executor as executor

    return executor.configured(celery_config(broker, backend), name="celery")


def executor_from_env() -> dg.ExecutorDefinition | None:
    """``QOS_EXECUTOR``: ``celery`` -> Celery workers; ``in_process``; unset -> None (Dagster's default,
    one process per step)."""
    choice = (os.environ.get(EXECUTOR_ENV) or "").strip().lower()
    if choice in ("", "default", "multiprocess"):
        return None
    if choice == "celery":
        return celery_executor()
    if choice == "in_process":  # one process per run: no per-step start-up (small runs, smoke tests)
        return dg.in_process_executor
    raise ValueError(f"{EXECUTOR_ENV}={choice!r}: use 'celery', 'in_process' or leave it unset (multiprocess)")
