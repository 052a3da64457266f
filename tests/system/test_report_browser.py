"""The HTML report in a real browser (headless Chromium over the DevTools protocol, the driver of
scripts/report_screenshots.py): typing into a table's filter box changes the rows shown, and clicking a
header sorts them. Skipped where chromium is not installed (`apt-get install -y chromium`)."""

from __future__ import annotations

import shutil

import pytest

from qos_pipeline.metrics.html import write_html
from tests.metrics.test_findings import planted_db
from tests.paths import free_port, load_script

OUTPUTS = "document.querySelector('input.filter').closest('div.table').querySelector('table.data')"
VISIBLE = f"Array.from({OUTPUTS}.tBodies[0].rows).filter(r => r.style.display !== 'none').length"


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="chromium is not installed (apt-get install -y chromium)")
def test_typing_into_a_filter_changes_the_visible_rows_and_headers_sort(tmp_path):
    page = write_html(planted_db(), tmp_path / "report.html")
    shots = load_script("scripts/report_screenshots.py")
    browser = shots.Browser(shots._script("ui_screenshot").chromium(),
                            shots._script("ui_screenshot").CHROMIUM_FLAGS, port=free_port())
    try:
        browser.goto(page.as_uri(), 1280, 900, settle=0.5)
        before = browser.js(VISIBLE)
        assert before >= 512  # every output of muslim and white names
        browser.js("document.querySelector('input.filter').focus()")
        browser.call("Input.insertText", text="refusal")
        after = browser.js(VISIBLE)
        assert 0 < after < before  # only the refused outputs remain
        counter = browser.js("document.querySelector('input.filter').closest('div.table')"
                             ".querySelector('span.count').textContent")
        assert counter == f"{after} of {before} rows"
        first = f"{OUTPUTS}.tBodies[0].rows[0].cells[2].textContent"  # the name column
        browser.js(f"{OUTPUTS}.tHead.rows[0].cells[2].click()")
        ascending = browser.js(first)
        browser.js(f"{OUTPUTS}.tHead.rows[0].cells[2].click()")
        descending = browser.js(first)
        assert ascending < descending  # alphabetical both ways
    finally:
        browser.close()
