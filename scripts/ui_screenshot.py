"""Screenshot the Dagster UI of this project with headless Chromium: start `dagster dev` on loopback (with a
temporary instance, so nothing of `.dagster/` changes), load a page, save a PNG, stop by PID.

    .venv/bin/python scripts/ui_screenshot.py [--out .dagster/ui-asset-graph.png] [--page audit|graph|generations] [--port 3335]

Needs Debian's chromium (`apt-get install -y chromium`). The PNG is for looking at, not for committing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ui_smoke", ROOT / "scripts" / "ui_smoke.py")
ui_smoke = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ui_smoke)

PAGES = {
    "graph": "/asset-groups",  # global asset lineage: every asset, its group, partitions and checks
    "audit": "/locations/{location}/asset-groups/audit",
    "generations": "/assets/generations",  # one asset: description, partitions, checks, metadata
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    return exe


def screenshot(url: str, out: Path, size: str = "1600,1000", budget_ms: int = 20000) -> Path:
    """Load ``url`` in a fresh headless profile; ``budget_ms`` of virtual time lets the UI's JavaScript
    fetch and lay out the graph before the picture is taken."""
    with tempfile.TemporaryDirectory(prefix="qos-chromium-") as profile:
        cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
               f"--window-size={size}", f"--virtual-time-budget={budget_ms}", url]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    if not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # Default under the git-ignored .dagster/: a picture to look at, never to commit.
    ap.add_argument("--out", type=Path, default=ROOT / ".dagster" / "ui-asset-graph.png")
    ap.add_argument("--page", choices=sorted(PAGES), default="audit")
    ap.add_argument("--port", type=int, default=3335)
    ap.add_argument("--size", default="1600,1000", help="window width,height in pixels")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qos-ui-shot-"))
    (work / "home").mkdir()
    shutil.copy(ROOT / "dagster.yaml", work / "home" / "dagster.yaml")
    os.environ.update({"DAGSTER_HOME": str(work / "home"), "QOS_WAREHOUSE": str(work / "wh")})
    proc = ui_smoke.start(args.port, work / "dagster.log")
    try:
        ui_smoke.wait_up(args.port, proc)
        location = ui_smoke.gql(args.port, ui_smoke.WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"][0]["name"]
        url = f"http://127.0.0.1:{args.port}" + PAGES[args.page].format(location=location)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        out = screenshot(url, args.out.resolve(), args.size)
        print(f"{url} -> {out} ({out.stat().st_size} bytes)")
    finally:
        ui_smoke.stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
