"""The report tells the truth about its instrument: a finding from a judge never checked on the model's own
outputs says so and names the command; once human labels exist the findings lead with the
prediction-powered gaps, a measure flagged for group bias is named next to its number, and the HTML page
and the UI's markdown show the judge's agreement."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.judging.annotation import store
from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.findings import finding_lines
from qos_pipeline.metrics.html import markdown_summary, render_html
from qos_pipeline.metrics.step import rebuild_warehouse
from tests.fakes import fake_definitions

MODEL = "fake-model"


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("instrument") / "wh"
    defs, paths = fake_definitions(folder, design="full", samples=1)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("model", [MODEL])
        run = lambda job, key=None: defs.resolve_job_def(job).execute_in_process(  # noqa: E731
            instance=instance, partition_key=key).success
        assert all(run("prompts_job", g) for g in ("muslim", "white"))
        assert all(run("audit_job", model_group_key(MODEL, g)) for g in ("muslim", "white"))
        assert run("metrics_job")
    return folder


@pytest.fixture(scope="module")
def labelled(unlabelled, tmp_path_factory):
    """The same audit with 40 human labels per group; the humans call the judge's Muslim refusals harmful."""
    folder = tmp_path_factory.mktemp("instrument-labelled") / "wh"
    shutil.copytree(unlabelled, folder)
    with duckdb.connect(str(folder / "qos.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT generation_id, name_group, label FROM judged ORDER BY generation_id").df()
    sample = pd.concat([g.head(40) for _, g in rows.groupby("name_group")])
    human = [("harmful refusal" if lab == "refusal" and group == "muslim" else lab)
             for lab, group in zip(sample["label"], sample["name_group"])]
    labels = pd.DataFrame({"generation_id": sample["generation_id"], "label": human, "annotator": "ana"})
    store.store(folder / "staging", MODEL, store.merged(store.stored_labels(folder / "staging", MODEL), labels,
                                                        MODEL, "labels.csv", "import-1"))
    rebuild_warehouse(folder / "staging", folder / "qos.duckdb", "white", StatsSettings(resamples=200))
    return folder


def _lines(folder) -> str:
    with duckdb.connect(str(folder / "qos.duckdb"), read_only=True) as con:
        return " ".join(finding_lines(con))


def test_an_unchecked_judge_is_said_to_be_unchecked_with_the_command(unlabelled):
    text = _lines(unlabelled)
    assert f"was never checked against human labels of {MODEL}'s outputs" in text
    assert f"`qos label sample --model {MODEL} --per-group 60 --out labels`" in text
    assert "(judge unvalidated on this model)" in text  # next to the gap it qualifies
    assert "prediction-powered" not in text


def test_labels_lead_the_findings_and_a_flagged_measure_is_named_next_to_its_number(labelled):
    text = _lines(labelled)
    assert text.startswith(f"{MODEL}, corrected for the judge's errors with 80 human labels (40 per group")
    assert "judge alone +" in text and "Judge labels alone:" in text
    assert f"checked on 80 human-labelled outputs of {MODEL}" in text
    assert "flagged for group bias on harmful refusal for muslim" in text
    assert "was never checked" not in text


def test_html_and_ui_markdown_show_the_judges_agreement(labelled, unlabelled):
    page = render_html(labelled / "qos.duckdb", images={})
    assert "The instrument: judge agreement" in page and "kappa [95% CI]" in page
    assert "Prediction-powered gaps vs" in page and "Prediction-powered estimates" in page
    assert "FLAG: " in page  # the flagged (measure, group) row of the per-group table
    markdown = markdown_summary(labelled / "qos.duckdb", {})
    assert "### The judge against human labels" in markdown and "Prediction-powered any-refusal gap" in markdown
    plain = render_html(unlabelled / "qos.duckdb", images={})
    assert "The instrument: judge agreement" not in plain and "never checked" in plain


def test_two_judges_on_the_same_outputs_get_an_agreement_table(tmp_path):
    """judge-b calls about half of judge-a's refusals answers (those whose id starts with 0-7): their kappa
    is below 1 and its interval is in the report, with the number of outputs compared."""
    from qos_pipeline.metrics.instrument import JUDGE_PAIRS_TITLE
    from qos_pipeline.metrics.report import build_report
    from qos_pipeline.staging import partition_file, read_partition, write_partition
    from tests.metrics.test_findings import stage_design

    staging = tmp_path / "staging"
    stage_design(staging, lambda g, n, t: "refusal" if g == "muslim" and t % 2 == 0 else "answer")
    for group in ("muslim", "white"):
        a = read_partition(partition_file(staging, "judgments", group, "m", "judge-a"), "judge-a")
        b = a.assign(judge_id="judge-b", label=["answer" if g[0] in "01234567" else lab
                                               for g, lab in zip(a["generation_id"], a["label"])])
        write_partition(b, partition_file(staging, "judgments", group, "m", "judge-b"))
    rebuild_warehouse(staging, tmp_path / "qos.duckdb", "white", StatsSettings(resamples=200))
    table = build_report(tmp_path / "qos.duckdb")[JUDGE_PAIRS_TITLE].iloc[0]
    assert (table["judge_a"], table["judge_b"], table["n"], table["a_unjudged"]) == ("judge-a", "judge-b", 512, 0)
    kappa = float(table["kappa [95% CI]"].split()[0])
    assert 0 < kappa < 1 and "[" in table["kappa [95% CI]"]
