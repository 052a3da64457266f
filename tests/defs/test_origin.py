"""Runs of the ``qos`` commands carry the origin of the code location ``qos ui`` serves, so the UI lists them
under it (Overview -> Timeline, the job's runs, Re-execute), and only those runs get it."""

from __future__ import annotations

import dagster as dg

from qos_pipeline.cli.common import execute
from qos_pipeline.defs.origin import DEFINITIONS_MODULE, with_location_origin
from tests.fakes import fake_definitions


def test_command_runs_carry_the_code_locations_origin(tmp_path):
    defs, _ = fake_definitions(tmp_path / "wh", design="demo", samples=1)
    with dg.instance_for_test() as instance:
        execute(defs, "prompts_job", instance, "white")
        plain = defs.resolve_job_def("prompts_job").execute_in_process(instance=instance, partition_key="white")
        runs = {r.run_id: r for r in instance.get_runs()}
        assert len(runs) == 2
        assert runs.pop(plain.run_id).remote_job_origin is None  # outside the block: Dagster's own behaviour
        (run,) = runs.values()
        origin = run.remote_job_origin
        assert origin is not None and run.job_name == origin.job_name == "prompts_job"
        # what the UI matches a run on: `dagster dev -m qos_pipeline.definitions` names its location so
        assert origin.location_name == DEFINITIONS_MODULE
        assert origin.repository_origin.repository_name == "__repository__"
        assert run.tags["dagster/partition"] == "white"
        assert "create_run_for_job" not in vars(instance)  # the instance is left as it was


def test_the_instance_is_restored_when_the_run_fails():
    with dg.instance_for_test() as instance:
        try:
            with with_location_origin(instance, "audit_job"):
                raise RuntimeError("a run that failed to start")
        except RuntimeError:
            pass
        assert "create_run_for_job" not in vars(instance)
