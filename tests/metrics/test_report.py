"""`qos report` prints every cell of the warehouse: nothing dropped, nothing merged."""

from __future__ import annotations

from qos_pipeline.metrics.report import build_report, format_report
from qos_pipeline.metrics.step import rebuild_warehouse
from tests.metrics.test_build import _stage_judged


def test_two_versions_of_one_model_key_are_both_reported(tmp_path):
    # A checkpoint replaced in place: white judged on version v1, muslim on v2, with equal n. The report
    # used to pivot on the model key alone and keep the "first" of the two versions' rates.
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging, group="white", labels=("answer", "answer"), version="v1")
    _stage_judged(staging, group="muslim", labels=("refusal", "refusal"), version="v2")
    rebuild_warehouse(staging, db, "white")
    overall = build_report(db)["Label shares per model"]
    assert sorted(overall["model_version"]) == ["v1", "v2"]
    by_version = overall.set_index("model_version")
    assert by_version.loc["v1", "answer"] == "100.0%" and by_version.loc["v2", "refusal"] == "100.0%"
    assert "v1" in format_report(build_report(db)) and "v2" in format_report(build_report(db))
