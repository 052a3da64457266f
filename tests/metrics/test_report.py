"""`qos report` prints every cell of the warehouse: nothing dropped, nothing merged."""

from __future__ import annotations

import re

from qos_pipeline.metrics.report import build_report
from qos_pipeline.metrics.text import format_report
from qos_pipeline.metrics.build import build_database
from tests.metrics.test_build import _stage_judged


def test_two_versions_of_one_model_key_are_both_reported(tmp_path):
    # A checkpoint replaced in place: white judged on version v1, muslim on v2, with equal n. The report
    # used to pivot on the model key alone and keep the "first" of the two versions' rates.
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging, group="white", labels=("answer", "answer"), version="v1")
    _stage_judged(staging, group="muslim", labels=("refusal", "refusal"), version="v2")
    build_database(staging, db, "white")  # the tables only: the suites are tested in test_build
    overall = build_report(db)["Label shares per model"]
    assert sorted(overall["model_version"]) == ["v1", "v2"]
    by_version = overall.set_index("model_version")
    assert by_version.loc["v1", "answer"] == "100.0%" and by_version.loc["v2", "refusal"] == "100.0%"
    assert "v1" in format_report(build_report(db)) and "v2" in format_report(build_report(db))


def test_terminal_report_leads_with_findings_and_shows_intervals():
    from tests.metrics.test_findings import planted_db

    tables = build_report(planted_db())
    text = format_report(tables)
    assert list(tables)[0] == "Findings" and text.index("== Findings ==") < text.index("== Label shares per model ==")
    assert "m: 1 of 1 groups refused more often than white after Holm adjustment" in text
    # rates with their template-cluster interval, gaps with both intervals, the adjusted p-value
    per_group = tables["Refusal rates per group, 95% intervals"].set_index("name_group")
    assert re.fullmatch(r"46\.9% \[\d+\.\d, \d+\.\d\]", per_group.loc["muslim", "refusal"])
    gaps = tables["Disparities vs reference group 'white'"]
    muslim = gaps[(gaps["measure"] == "any_refusal") & (gaps["name_group"] == "muslim")].iloc[0]
    assert re.fullmatch(r"\+50\.0 \[\d+\.\d, \d+\.\d\]", muslim["gap, pts [95% CI]"])
    assert re.fullmatch(r"\[\d+\.\d, \d+\.\d\]", muslim["names fixed"]) and muslim["p_adj"] == "<0.001"
    shares = tables["Label shares per model, 95% intervals"].set_index("label")
    assert shares.loc["answer", "share"] == "75.0%" and shares.loc["answer", "Wilson CI"].startswith("[")
    assert "template-cluster bootstrap, 200 resamples, seed 0" in text
    # one cell: its keys are said once, and every line fits in 100 columns
    assert "cell: model_key=m, model_version=v, prompt_format=f" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_report_without_statistics_keeps_the_point_estimates():
    from tests.metrics.test_findings import stats_off_db

    tables = build_report(stats_off_db())
    text = format_report(tables)
    assert "statistics are off for this build" in text and "statistics off: no intervals" in text
    disp = tables["Disparities vs reference group 'white'"].set_index("name_group")
    assert disp.loc["muslim", "any_refusal_diff"] == "100.0%"  # the plain disparities table, no brackets
    assert tables["Refusal rates per group, 95% intervals"].set_index("name_group").loc["muslim", "refusal"] == "100.0%"
