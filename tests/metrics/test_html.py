"""`qos report --html`: one self-contained page (tables, images as data URIs, no external URL), and the
same findings and pictures as markdown on the ``metric_tables`` asset."""

from __future__ import annotations

import base64
import functools
import re
import shutil

import pytest

from qos_pipeline.metrics.html import markdown_summary, render_html
from tests.metrics.test_findings import planted_db

IMG = re.compile(r"<img alt='(\w+)' src='data:image/png;base64,([A-Za-z0-9+/=]+)'>")


@functools.cache
def _page() -> str:
    return render_html(planted_db())


def test_html_is_self_contained_with_tables_images_method_and_provenance():
    page = _page()
    images = dict(IMG.findall(page))
    assert set(images) == {"forest", "names", "label_shares", "templates"}
    assert all(base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n" for b64 in images.values())
    # nothing fetched from elsewhere: no URL, no script file, no stylesheet link; every src is a data URI; the
    # one script is inline (sorting and filtering the tables)
    assert not re.search(r"https?://|<script[^>]*src|<link|@import|url\(", page) and page.count("<script>") == 1
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r"src='([^']*)'", page))
    assert page.count("<table") >= 8 and "Disparities vs reference group &#x27;white&#x27;" in page
    assert "<td>muslim</td>" in page and "+50.0 [" in page
    assert "m: 1 of 1 groups refused more often than white after Holm adjustment" in page
    assert "200 resamples, seed 0" in page and "permutation test" in page
    assert "Beta posteriors" not in page  # no corrected rates on this page: no method note describing them
    assert "build_id" in page and "judge-a" in page  # provenance: the build and every cell's keys


def test_html_names_no_path_of_the_machine_it_was_built_on():
    page, db = _page(), planted_db()
    assert db.name in page  # the warehouse by its file name
    assert not [str(p) for p in db.parents if str(p) != "/" and str(p) in page]


def test_html_shows_the_evidence_of_each_finding_and_a_filterable_outputs_table():
    page = _page()
    assert "What drives the any refusal gap of muslim vs white (+50.0 pts" in page
    assert "share of the gap" in page and "Example outputs on these templates" in page
    assert "<h2>Outputs behind the findings</h2>" in page and "<input class='filter'" in page
    # every output of the finding's groups (muslim, white) is in the table, with its full text
    assert page.count("<td class='text'>") >= 512


def test_qos_report_html_writes_the_page_and_the_plots(tmp_path, monkeypatch, capsys):
    from qos_pipeline.cli import main

    (tmp_path / "wh").mkdir()
    shutil.copy(planted_db(), tmp_path / "wh" / "qos.duckdb")
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    main(["report", "--html", str(tmp_path / "out" / "report.html"), "--plots"])
    out = capsys.readouterr().out
    assert out.startswith("m: 1 of 1 groups refused more often than white") and "report.html" in out
    assert (tmp_path / "wh" / "plots" / "forest.png").is_file()
    assert len(IMG.findall((tmp_path / "out" / "report.html").read_text())) == 4


def test_markdown_for_the_asset_has_findings_key_table_and_images():
    images = {name: base64.b64decode(b64) for name, b64 in IMG.findall(_page())}  # drawn once
    md = markdown_summary(planted_db(), images)
    assert md.startswith("### Findings\n- m: 1 of 1 groups refused more often than white")
    assert "| m | muslim | 256 | 50.0% | 0.0% | +50.0 [" in md
    assert md.count("](data:image/png;base64,") == 4


@pytest.mark.slow  # the asset runs the Great Expectations suites too
def test_metric_tables_asset_carries_findings_and_pictures(tmp_path):
    import dagster as dg

    from qos_pipeline.defs.metrics import metric_tables
    from qos_pipeline.defs.resources import AuditSettings, RegressionGate, Storage
    from tests.metrics.test_findings import stage_design

    stage_design(tmp_path / "wh" / "staging", lambda g, n, t: "refusal" if g == "muslim" and t % 2 else "answer")
    result = dg.materialize([metric_tables], resources={
        "storage": Storage(warehouse_dir=str(tmp_path / "wh")), "audit": AuditSettings(reference_group="white"),
        "gate": RegressionGate()},
        run_config={"ops": {"metric_tables": {"config": {"bootstrap_resamples": 100}}}})
    metadata = result.asset_materializations_for_node("metric_tables")[0].metadata
    assert list(metadata)[:2] == ["findings", "plots"] and metadata["rows/generations"].value == 512
    md = metadata["findings"].value
    assert "- m: 1 of 1 groups refused more often than white" in md and md.count("](data:image/png;base64,") == 4
    assert sorted(p.name for p in (tmp_path / "wh" / "plots").iterdir()) == [
        "forest.png", "label_shares.png", "names.png", "templates.png"]
