"""The code location's origin for runs that the ``qos`` commands execute in their own process.

``execute_in_process`` records a run without an origin, and the UI files runs under a code location by
their origin: such runs are missing from Overview -> Timeline and cannot be re-executed from the UI
(dagster issue 19458). Dagster 1.13 takes no origin for an in-process run, so ``with_location_origin``
hands one to the instance's run creation for the length of one call: the origin of the location that
``qos ui`` serves (``dagster dev -m qos_pipeline.definitions``), whose name and repository are all the UI
matches on.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from qos_pipeline.settings import PROJECT_ROOT

DEFINITIONS_MODULE = "qos_pipeline.definitions"
"""The module ``qos ui`` loads; Dagster names the code location after it."""


def job_origin(job_name: str) -> RemoteJobOrigin:
    """The origin a run of ``job_name`` launched from the UI of ``qos ui`` has."""
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE,
                                  working_directory=str(PROJECT_ROOT))
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target)  # named after the module, as `dagster dev -m` does
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), job_name)


@contextlib.contextmanager
def with_location_origin(instance: dg.DagsterInstance, job_name: str) -> Iterator[None]:
    """Runs that ``instance`` creates inside the block carry the code location's origin for ``job_name``."""
    create = instance.create_run_for_job

    @functools.wraps(create)
    def create_with_origin(*args, **kwargs):
        kwargs["remote_job_origin"] = kwargs.get("remote_job_origin") or job_origin(job_name)
        return create(*args, **kwargs)

    instance.create_run_for_job = create_with_origin  # type: ignore[method-assign]  # this instance object only, and only inside the block
    try:
        yield
    finally:
        del instance.create_run_for_job
