"""Do prediction-powered gaps from a small human sample cover the gaps of the full human labels?

On a human-labelled file of recorded outputs (default: the pilot's Llama-2-13b-chat file; any file in its
format, or CSV/JSONL with prompt, response, label, works): the file is ingested twice into a temporary
warehouse, once judged by the judge under test and once as the human labels; then for each seed the real
commands run: `qos label sample --per-group N --seed S`, the sample's labels are filled in from the human
labels, `qos label import`. For each measure the script prints the full-human-label gap of GROUP vs
REFERENCE, the prediction-powered gap with its template x name interval (covered? width) and the judge-only
gap with its interval (covered? width), and a summary over seeds (coverage, mean width ratio).

Usage: python benchmarks/ppi_coverage.py [FILE] [--judge default] [--per-group 60] [--seeds 5]
                                         [--group muslim] [--reference white]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = REPO / "../shared/data/pilot/df_annotated_llama13.csv"
MEASURES = ("refusal", "harmful_refusal", "any_refusal")


def _qos(*argv: str) -> str:
    """Run a `qos` command in this process; its stdout (Dagster's log goes to stderr, silenced)."""
    from qos_pipeline.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(list(argv))
    return out.getvalue()


def _gaps(db: Path, table: str, judge_sql: str, group: str, reference: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"""SELECT measure, diff, diff_ci_tn_low AS low, diff_ci_tn_high AS high FROM {table}
            WHERE {judge_sql} AND name_group = ? AND vs_group = ?""", [group, reference]).df().set_index("measure")


def run(path: Path, judge: str, per_group: int, seeds: int, group: str, reference: str) -> pd.DataFrame:
    folder = Path(tempfile.mkdtemp(prefix="ppi-coverage-"))
    os.environ.update(QOS_WAREHOUSE=str(folder / "wh"), DAGSTER_HOME=str(folder / "home"), QOS_JUDGES=judge)
    (folder / "home").mkdir()
    _qos("ingest", str(path), "--model", "audited")
    _qos("ingest", str(path), "--model", "humans", "--labels", "human")
    db = folder / "wh" / "qos.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        human = dict(con.execute("""SELECT a.generation_id, h.recorded_label FROM generations a
            JOIN generations h USING (prompt_id, sample) WHERE a.model_key = 'audited' AND h.model_key = 'humans'
            """).fetchall())
    truth = _gaps(db, "group_comparisons", "judge_id = 'human'", group, reference)
    judge_only = _gaps(db, "group_comparisons", "model_key = 'audited'", group, reference)
    rows = []
    for seed in range(seeds):
        (folder / "wh" / "staging" / "human_labels" / "model=audited" / "labels.parquet").unlink(missing_ok=True)
        _qos("label", "sample", "--model", "audited", "--per-group", str(per_group), "--seed", str(seed),
             "--out", str(folder / f"s{seed}"))
        sample = pd.read_csv(folder / f"s{seed}.csv", dtype=str, keep_default_na=False)
        sample.assign(label=sample["generation_id"].map(human), annotator="file").to_csv(folder / f"s{seed}.csv",
                                                                                         index=False)
        _qos("label", "import", str(folder / f"s{seed}.csv"), "--model", "audited")
        ppi = _gaps(db, "group_comparisons_ppi", "model_key = 'audited'", group, reference)
        for m in MEASURES:
            t, p, j = truth.loc[m, "diff"], ppi.loc[m], judge_only.loc[m]
            rows.append({"seed": seed, "measure": m, "human_gap": t, "ppi_gap": p["diff"], "ppi_low": p["low"],
                         "ppi_high": p["high"], "ppi_covers": p["low"] <= t <= p["high"],
                         "ppi_width": p["high"] - p["low"], "judge_gap": j["diff"], "judge_low": j["low"],
                         "judge_high": j["high"], "judge_covers": j["low"] <= t <= j["high"],
                         "judge_width": j["high"] - j["low"]})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    parser.add_argument("--judge", default="default")
    parser.add_argument("--per-group", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--group", default="muslim")
    parser.add_argument("--reference", default="white")
    args = parser.parse_args()
    path = Path(args.file).resolve()
    if not path.is_file():
        sys.exit(f"file not found: {path}")
    table = run(path, args.judge, args.per_group, args.seeds, args.group, args.reference)
    pts = lambda x: f"{100 * x:+.1f}"  # noqa: E731
    shown = pd.DataFrame({
        "seed": table["seed"], "measure": table["measure"], "human gap": table["human_gap"].map(pts),
        "PPI gap [t x n CI]": [f"{pts(g)} [{100 * a:.1f}, {100 * b:.1f}]" for g, a, b in
                               zip(table["ppi_gap"], table["ppi_low"], table["ppi_high"])],
        "covers": table["ppi_covers"], "width": (100 * table["ppi_width"]).round(1),
        "judge-only gap [t x n CI]": [f"{pts(g)} [{100 * a:.1f}, {100 * b:.1f}]" for g, a, b in
                                      zip(table["judge_gap"], table["judge_low"], table["judge_high"])],
        "judge covers": table["judge_covers"], "judge width": (100 * table["judge_width"]).round(1)})
    print(f"{path.name}: {args.group} vs {args.reference}, judge {args.judge}, {args.per_group} human labels per "
          f"group, {args.seeds} seeds (gaps in points; intervals resample templates and names)")
    print(shown.to_string(index=False))
    summary = table.groupby("measure").agg(ppi_coverage=("ppi_covers", "mean"), judge_coverage=("judge_covers", "mean"),
                                           ppi_width=("ppi_width", "mean"), judge_width=("judge_width", "mean"))
    summary["width ratio (PPI / judge)"] = (summary["ppi_width"] / summary["judge_width"]).round(2)
    print(summary.assign(ppi_width=(100 * summary["ppi_width"]).round(1),
                         judge_width=(100 * summary["judge_width"]).round(1)).to_string())


if __name__ == "__main__":
    main()
