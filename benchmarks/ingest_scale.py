"""Ingest at scale: wall time and peak memory of ``qos ingest`` for 200,000 and 1,000,000 recorded rows, in
one run, so the two sizes are compared on the same machine at the same time.

    python benchmarks/ingest_scale.py                          # 200,000 and 1,000,000 rows
    python benchmarks/ingest_scale.py --rows 20000 100000      # a quick look

Each size is a synthetic CSV of recorded outputs in the generic format (``prompt``, ``response``,
``group``, ``name``, ``sample``): every group of assets/names.yaml with its 8 names, 5 samples per prompt
and as many templates as the size needs (200,000 rows: 715 templates; 1,000,000: 3,572), responses of a
few hundred characters, a fifth of them refusals, so the rules judge and the statistics do real work. The
file is written line by line (the benchmark itself holds no table) to a temporary folder, and ingested by
the real command (``qos ingest FILE --model K``: reading, checks, the Dagster runs of generations,
judgments and metric_tables, the report) into a temporary warehouse and Dagster home; nothing reaches the
project's warehouse.

Peak memory is sampled every 50 ms as the resident memory of the command's whole process tree (psutil);
the largest single process (``ru_maxrss`` of the waited children) is printed beside it. The last line is
the ratio of the two sizes' peaks: memory flat in the number of rows reads close to 1.0.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 5
ANSWERS = [
    "Sure! Here is a short piece about {topic}. It starts with a clear opening line, gives two concrete "
    "examples from everyday life and ends with a friendly summary that keeps the tone light and helpful.",
    "Of course. {topic} can be approached in several ways: first, set a goal; second, gather what you need; "
    "third, take one small step each day. Many people find that writing the plan down makes it easier.",
    "Here are three ideas about {topic}: a weekend project, a short reading list and a simple routine that "
    "fits a busy week. Each one takes less than an hour and needs nothing you do not already have.",
]
REFUSALS = [
    "I cannot fulfill your request. I'm just an AI, it's not within my programming or ethical guidelines to "
    "provide content about {topic} that could be harmful or offensive. Is there anything else I can help with?",
    "I apologize, but I cannot help with {topic} as it may perpetuate harmful stereotypes. It is important to "
    "treat everyone with respect regardless of their background.",
]


def write_file(path: Path, rows: int, seed: int = 0) -> int:
    """A CSV of about ``rows`` recorded outputs; returns the exact number of rows written."""
    names = yaml.safe_load((ROOT / "assets" / "names.yaml").read_text())
    people = [(group, entry["name"]) for group, entries in names.items() for entry in entries]
    templates = max(1, round(rows / (len(people) * SAMPLES)))
    rng = random.Random(seed)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["prompt", "response", "group", "name", "sample"])
        for t in range(templates):
            topic = f"topic number {t}"
            prompt_tail = f" wants to learn about {topic}. Write a [BLANK] for them."
            for group, name in people:
                for sample in range(SAMPLES):
                    pool = REFUSALS if rng.random() < 0.2 else ANSWERS
                    out.writerow([name + prompt_tail, rng.choice(pool).format(topic=topic), group, name, sample])
                    written += 1
    return written


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # a child that just ended
            pass
    return total


def ingest(path: Path, model: str, work: Path) -> tuple[float, int]:
    """Run ``qos ingest`` on ``path``; (wall seconds, peak resident bytes of the process tree)."""
    env = {**os.environ, "QOS_WAREHOUSE": str(work / "warehouse"), "DAGSTER_HOME": str(work / "dagster"),
           "QOS_MODEL_CACHE": str(work / "models")}
    (work / "dagster").mkdir(parents=True, exist_ok=True)
    qos = Path(sys.executable).with_name("qos")
    start = time.perf_counter()
    proc = subprocess.Popen([str(qos), "ingest", str(path), "--model", model], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _tree_rss(watched))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"qos ingest of {path.name} failed (exit {proc.returncode}):\n{output[-3000:]}")
    return wall, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qos-ingest-scale-"))
    results = []
    try:
        for rows in args.rows:
            path = work / f"recorded-{rows}.csv"
            n = write_file(path, rows)
            size = path.stat().st_size
            wall, peak = ingest(path, f"bench-{rows}", work / f"run-{rows}")
            path.unlink()
            largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
            results.append((n, size, wall, peak))
            print(f"{n:>9,} rows ({size / 2**20:6.1f} MiB CSV): {wall:7.1f} s wall, {n / wall:8,.0f} rows/s, "
                  f"peak memory {peak / 2**30:.2f} GiB (process tree; largest process so far "
                  f"{largest / 2**30:.2f} GiB)", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if len(results) > 1:
        (n0, _, w0, p0), (n1, _, w1, p1) = results[0], results[-1]
        print(f"{n1 / n0:.1f}x the rows: {p1 / p0:.2f}x the peak memory, {w1 / w0:.2f}x the wall time")


if __name__ == "__main__":
    main()
