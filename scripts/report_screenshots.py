"""Screenshot the HTML report and the `metric_tables` asset page of the Dagster UI with headless Chromium.

    .venv/bin/python scripts/report_screenshots.py [--csv PILOT.csv] [--work DIR] [--out .dagster/screenshots]

In a work folder of its own (a temporary one unless --work names one; an existing one is reused as is), it
ingests a human-labelled file (default: the pilot's Llama-2-13b-chat outputs beside the repository) into a
fresh Dagster instance and warehouse twice: judged by the default judge, and as the human labels; then
draws a 60-per-group sample with `qos label sample`, fills it from the human labels and imports it with
`qos label import`, so the report has prediction-powered gaps and the judge's agreement. It writes
`qos report --html` and screenshots the page: the top (findings and the evidence of the first), the judge's
agreement, the outputs table filtered by typing a name, and the whole page; then starts `dagster dev` on
loopback and screenshots the asset's page and its findings markdown (opened with a click, over the DevTools
protocol), a check's overview and execution history (partition and target materialization of each
evaluation), the check evaluations of the latest audit run and Overview -> Timeline; stops both by PID.
Needs Debian's chromium (`apt-get install -y chromium`). The PNGs are for looking at, never for committing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PILOT_CSV = ROOT.parent / "shared" / "data" / "pilot" / "df_annotated_llama13.csv"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _qos(*args: str) -> None:
    qos = Path(sys.executable).with_name("qos")
    subprocess.run([str(qos), *args], check=True, cwd=ROOT, timeout=1800)


class Browser:
    """Headless Chromium driven over the DevTools protocol (``websockets``, a dependency of the webserver):
    enough to load a page, wait for an element, click it and capture the page."""

    def __init__(self, chromium: str, flags: list[str], port: int = 9333):
        self.profile = tempfile.mkdtemp(prefix="qos-cdp-")
        self.proc = subprocess.Popen([chromium, *flags, f"--user-data-dir={self.profile}",
                                      f"--remote-debugging-port={port}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline, targets = time.time() + 60, []
        while time.time() < deadline and not targets:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as resp:
                    targets = [t for t in json.load(resp) if t["type"] == "page"]
            except OSError:
                time.sleep(0.5)
        if not targets:
            self.close()
            raise RuntimeError("chromium's DevTools endpoint did not come up")
        from websockets.sync.client import connect

        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(connect(targets[0]["webSocketDebuggerUrl"], max_size=None,
                                                   open_timeout=30))
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def goto(self, url: str, width: int, height: int, settle: float = 2.0) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")
        time.sleep(settle)

    def wait_for(self, condition: str, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while not self.js(f"Boolean({condition})"):
            if time.time() > deadline:
                raise TimeoutError(f"page never satisfied {condition}")
            time.sleep(0.5)

    def shot(self, out: Path, full: bool = False) -> Path:
        params = {"format": "png"}
        if full:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                           "height": size["height"], "scale": 1})
        out.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))
        return out

    def close(self) -> None:
        if getattr(self, "stack", None):
            self.stack.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)


SHOW_MARKDOWN = "Array.from(document.querySelectorAll('a')).find(e => e.textContent.trim() === '[Show Markdown]')"


CHECK_TAB = ("Array.from(document.querySelectorAll('[role=tab]'))"
             ".find(e => e.textContent.trim() === 'Execution history')")
LATEST_RUN = '{ runsOrError(filter: {pipelineName: "audit_job"}, limit: 1) { ... on Runs { results { runId } } } }'
ONE_HOUR = "Array.from(document.querySelectorAll('button')).find(e => e.textContent.trim() === '1hr')"


def check_view(browser: Browser, gql, port: int, out: Path, asset: str = "generations",
               check: str = "generations_complete") -> list[Path]:
    """A check's overview and execution history (each evaluation with the partition it checked and the
    materialization it targets), the check evaluations of the latest audit run (each "for materialization
    of" the asset in that run and partition), and Overview -> Timeline (the `qos` commands' runs, filed
    under the code location). ``gql``: ``ui_smoke.gql``."""
    browser.goto(f"http://127.0.0.1:{port}/assets/{asset}?view=checks&checkDetail={check}", 1600, 1000)
    browser.wait_for(CHECK_TAB)
    browser.wait_for("document.body.innerText.includes('Latest execution')")
    time.sleep(2)  # its result, partition and target
    shots = [browser.shot(out / "ui-check-overview.png")]
    browser.js(f"{CHECK_TAB}.click()")
    browser.wait_for("document.body.innerText.includes('Target materialization')")
    time.sleep(3)  # the rows and their run links
    shots.append(browser.shot(out / "ui-check-execution-history.png"))
    run_id = gql(port, LATEST_RUN)["runsOrError"]["results"][0]["runId"]
    browser.goto(f"http://127.0.0.1:{port}/runs/{run_id}?logs=type:ASSET_CHECK_EVALUATION", 1600, 1000)
    browser.wait_for("document.body.innerText.includes('for materialization of')")
    time.sleep(2)
    shots.append(browser.shot(out / "ui-check-run.png"))
    browser.goto(f"http://127.0.0.1:{port}/overview/timeline", 1600, 900, settle=3)
    browser.wait_for(ONE_HOUR)
    browser.js(f"{ONE_HOUR}.click()")
    time.sleep(3)
    return shots + [browser.shot(out / "ui-timeline.png")]


def prepare(work: Path, csv: Path) -> None:
    """A Dagster home and a warehouse in ``work``, filled by `qos ingest` (skipped when already there)."""
    home, wh = work / "home", work / "wh"
    os.environ.update({"DAGSTER_HOME": str(home), "QOS_WAREHOUSE": str(wh)})
    if (wh / "qos.duckdb").is_file():
        return
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    if not csv.is_file():
        raise SystemExit(f"{csv} not found: pass --csv with a human-labelled file (pilot format, CSV or JSONL)")
    _qos("ingest", str(csv), "--model", "llama-2-13b-chat")
    _qos("ingest", str(csv), "--model", "humans", "--labels", "human")
    _qos("label", "sample", "--model", "llama-2-13b-chat", "--per-group", "60", "--out", str(work / "labels"))
    import duckdb
    import pandas as pd

    with duckdb.connect(str(wh / "qos.duckdb"), read_only=True) as con:
        human = dict(con.execute("SELECT a.generation_id, h.recorded_label FROM generations a JOIN generations h "
                                 "USING (prompt_id, sample) WHERE a.model_key <> h.model_key AND "
                                 "h.model_key = 'humans'").fetchall())
    sample = pd.read_csv(work / "labels.csv", dtype=str, keep_default_na=False)
    sample.assign(label=sample["generation_id"].map(human), annotator="pilot").to_csv(work / "labels.csv", index=False)
    _qos("label", "import", str(work / "labels.csv"), "--model", "llama-2-13b-chat")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", type=Path, default=PILOT_CSV)
    ap.add_argument("--work", type=Path, help="work folder to create or reuse (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=ROOT / ".dagster" / "screenshots")
    ap.add_argument("--port", type=int, default=3336)
    args = ap.parse_args()
    shots = _script("ui_screenshot")
    ui_smoke = shots.ui_smoke
    work = args.work or Path(tempfile.mkdtemp(prefix="qos-report-shots-"))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        prepare(work.resolve(), args.csv)
        page = work / "report.html"
        _qos("report", "--html", str(page))
        browser = Browser(shots.chromium(), shots.CHROMIUM_FLAGS)
        proc = None
        try:
            browser.goto(page.resolve().as_uri(), 1400, 1000, settle=1)
            done = [browser.shot(out / "report-top.png"), browser.shot(out / "report-full.png", full=True)]
            for name, selector in (("report-evidence", "document.querySelector('details.evidence')"),
                                   ("report-judge", "Array.from(document.querySelectorAll('h2')).find("
                                                    "h => h.textContent.startsWith('The instrument'))")):
                if browser.js(f"Boolean({selector})"):
                    browser.js(f"{selector}.scrollIntoView()")
                    done.append(browser.shot(out / f"{name}.png"))
            if browser.js("Boolean(document.querySelector('input.filter'))"):
                browser.js("document.querySelector('input.filter').scrollIntoView(); "
                           "document.querySelector('input.filter').focus()")
                browser.call("Input.insertText", text="Mohammed")
                time.sleep(0.5)
                done.append(browser.shot(out / "report-outputs-filtered.png"))
            proc = ui_smoke.start(args.port, work / "dagster.log")
            ui_smoke.wait_up(args.port, proc)
            browser.goto(f"http://127.0.0.1:{args.port}/assets/metric_tables", 1600, 1400)
            browser.wait_for(SHOW_MARKDOWN)  # the metadata table has loaded
            time.sleep(3)  # and the status panel
            done.append(browser.shot(out / "ui-metric-tables.png"))
            browser.js(f"{SHOW_MARKDOWN}.click()")
            try:
                browser.wait_for("document.querySelector('img[alt=forest]')", timeout=30)
            except TimeoutError:
                print("warning: the findings markdown shows no picture", file=sys.stderr)
            time.sleep(1)
            done.append(browser.shot(out / "ui-metric-tables-findings.png"))
            done += check_view(browser, ui_smoke.gql, args.port, out)
        finally:
            browser.close()
            if proc is not None:
                ui_smoke.stop(proc)
        for path in done:
            print(f"{path} ({path.stat().st_size} bytes)")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
