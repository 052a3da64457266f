"""Model comparisons of recorded files: two files of the same prompts compare whatever their names (a
recorded design is its prompt set), and gap A minus gap B reads the same in the table, the text report,
the HTML page and the findings."""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.build import build_database
from qos_pipeline.metrics.html import render_html
from qos_pipeline.metrics.model_findings import model_comparison_lines
from qos_pipeline.metrics.report import MODELS, build_report
from qos_pipeline.metrics.text import format_report
from tests.ingest.test_recorded import _ingest
from tests.paths import need_pilot


@functools.cache
def two_files_db():
    """The pilot's 13b file as model 'a-13b' (file first.csv), and a copy where half of the Muslim names'
    refusals became answers as model 'b-fewer' (file second.csv): the Muslim gap of A is the larger."""
    pilot = need_pilot()
    folder = Path(tempfile.mkdtemp(prefix="qos-models-"))
    atexit.register(shutil.rmtree, folder, True)
    shutil.copy(pilot, folder / "first.csv")
    df = pd.read_csv(pilot)
    muslim_refusals = df.index[(df["identity"] == "muslim") & df["label"].isin(["refusal", "harmful refusal"])]
    df.loc[muslim_refusals[::2], "label"] = "answer"
    df.to_csv(folder / "second.csv", index=False)
    _ingest(folder / "first.csv", folder / "staging", model="a-13b")
    _ingest(folder / "second.csv", folder / "staging", model="b-fewer")
    build_database(folder / "staging", folder / "qos.duckdb", "white", StatsSettings(resamples=200))
    return folder / "qos.duckdb"


def test_two_recorded_files_of_the_same_prompts_are_compared_with_the_right_sign():
    db = two_files_db()
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT * FROM model_comparisons").df()
        gaps = dict(con.execute("SELECT model_key, diff FROM group_comparisons WHERE family = 'primary' "
                                "AND name_group = 'muslim'").fetchall())
        lines = model_comparison_lines(con)
    assert len(rows) == 4 * 3  # 4 groups vs white x 3 measures, one pair of cells
    muslim = rows[(rows["name_group"] == "muslim") & (rows["family"] == "primary")].iloc[0]
    assert (muslim["model_key_a"], muslim["model_key_b"]) == ("a-13b", "b-fewer")
    assert (muslim["design_a"], muslim["design_b"]) == ("ingest:first.csv", "ingest:second.csv")
    assert muslim["gap_a"] == pytest.approx(gaps["a-13b"]) and muslim["gap_b"] == pytest.approx(gaps["b-fewer"])
    assert muslim["diff_of_gaps"] == muslim["gap_a"] - muslim["gap_b"] > 0.08
    # the text report and the findings
    change = f"+{100 * muslim['diff_of_gaps']:.1f}"
    table = build_report(db)[MODELS]
    row = table[(table["name_group"] == "muslim") & (table["family"] == "primary")].iloc[0]
    assert row["A - B, pts [95% CI]"].startswith(change + " [") and row["gap A"] == f"+{100 * muslim['gap_a']:.1f}"
    assert "gap of model A minus gap of model B" in format_report(build_report(db))
    [line] = lines
    assert line.startswith("a-13b vs b-fewer (same prompts, gap of a-13b minus gap of b-fewer")
    assert f"muslim {change} pts" in line
    # the HTML table: the same header and the same signed value in one row
    page = render_html(db)
    assert "A - B, pts [95% CI]" in page and "B - A" not in page
    assert re.search(rf"<td>muslim</td>\s*<td>{re.escape(row['gap A'])}</td>\s*<td>{re.escape(row['gap B'])}</td>"
                     rf"\s*<td>{re.escape(row['A - B, pts [95% CI]'])}</td>", page)
