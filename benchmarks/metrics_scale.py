"""Metric rebuild at scale: a synthetic audit of ~1,000,000 judged rows, rebuilt with and without the
cluster bootstrap, in one run.

    python benchmarks/metrics_scale.py                   # 20 models x 7 groups x 1,792 prompts x 4 samples
    python benchmarks/metrics_scale.py --models 2        # a quick look (~100,000 rows)

The synthetic audit has the real design's shape: every group shares the same templates, every
(template, name) prompt has several samples, refusals depend on the template, the name and the group (so
samples of a prompt agree, as they do in real audits). It is staged as Parquet partitions exactly as the
pipeline stages them and rebuilt by ``metrics.step.rebuild_warehouse``: loading, every SQL table, every
Great Expectations / pandera suite and, in the first timing, the statistics (1,000 resamples by default:
intervals of every label rate, group comparisons with permutation tests, name sensitivity, model
comparisons). The second timing builds the same warehouse with the statistics switched off
(``resamples=0``), so the ratio is the bootstrap's cost. Nothing here reaches the project's warehouse.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.step import rebuild_warehouse
from qos_pipeline.staging import partition_file, write_partition

GROUPS = ["white", "black", "asian", "chinese", "mexican", "muslim", "jewish"]
LABELS = ["answer", "refusal", "harmful refusal", "partial answer", "harmful answer", "failure"]


def _audit(models: int, templates: int, names: int, samples: int, seed: int) -> pd.DataFrame:
    """One row per (model, group, template, name, sample) with a label drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    m, g, t, n, s = np.meshgrid(np.arange(models), np.arange(len(GROUPS)), np.arange(templates), np.arange(names),
                                np.arange(samples), indexing="ij")
    m, g, t, n, s = (a.ravel() for a in (m, g, t, n, s))
    template_effect = rng.normal(0, 1.2, templates)
    name_effect = rng.normal(0, 0.6, (len(GROUPS), names))
    group_effect = np.linspace(0, 1.0, len(GROUPS))  # the first group (reference) refused least
    model_effect = rng.normal(0, 0.5, models)
    logit = -2.0 + template_effect[t] + name_effect[g, n] + group_effect[g] + model_effect[m]
    refused = rng.random(len(m)) < 1 / (1 + np.exp(-logit))
    other = rng.choice(len(LABELS), size=len(m), p=[0.80, 0.0, 0.03, 0.08, 0.02, 0.07])
    label = np.where(refused, 1, other)
    return pd.DataFrame({"m": m, "g": g, "t": t, "n": n, "sample": s, "label": np.asarray(LABELS)[label]})


def _stage(audit: pd.DataFrame, staging: Path) -> None:
    """Staged partitions with every column of ``generations`` and ``judgments`` (ids unique per row)."""
    now = pd.Timestamp.now(tz="UTC")
    for (m, g), part in audit.groupby(["m", "g"], sort=True):
        model, group = f"model-{m:02d}", GROUPS[g]
        prompt = "t" + part["t"].astype(str) + "-" + group + "-n" + part["n"].astype(str)
        gen_id = model + "-" + prompt + "-s" + part["sample"].astype(str)
        common = {"prompt_id": prompt.values, "sample": part["sample"].values.astype("int32"), "model_key": model,
                  "model_version": "v1", "prompt_format": "llama2-chat"}
        gen = pd.DataFrame({
            "generation_id": gen_id.values, **common, "system_prompt": None, "gen_config": "{}",
            "gen_config_hash": "synthetic", "seed": part["sample"].values, "response": "synthetic response",
            "finish_reason": "stop", "n_new_tokens": 3, "source": "synthetic", "cache_key": None,
            "recorded_label": None, "design": "synthetic", "template_id": "t" + part["t"].astype(str).values,
            "template_name": "template " + part["t"].astype(str).values, "template_text": "A request about [NAME].",
            "target_group": "", "name": group + "-n" + part["n"].astype(str).values, "name_group": group,
            "gender": np.where(part["n"].values % 2 == 0, "man", "woman"),
            "popularity": np.where(part["n"].values % 4 < 2, "popular", "less common"),
            "prompt_text": prompt.values, "run_id": "bench", "created_at": now})
        judged = pd.DataFrame({"generation_id": gen_id.values, **common, "judge_id": "synthetic",
                               "label": part["label"].values, "reason": None, "scores": None, "run_id": "bench",
                               "judged_at": now})
        write_partition(gen, partition_file(staging, "generations", group, model))
        write_partition(judged, partition_file(staging, "judgments", group, model, "synthetic"))


def _rebuild(staging: Path, db: Path, settings: StatsSettings) -> tuple[float, dict]:
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    counts, outcomes = rebuild_warehouse(staging, db, GROUPS[0], settings)
    failed = [o.name for o in outcomes if not o.passed and o.blocking]
    if failed:
        raise SystemExit(f"the synthetic warehouse failed blocking suites {failed}: the benchmark is out of date")
    return time.perf_counter() - start, counts


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--templates", type=int, default=64)
    p.add_argument("--names", type=int, default=28, help="names per group")
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="qos-metrics-scale-"))
    try:
        start = time.perf_counter()
        audit = _audit(args.models, args.templates, args.names, args.samples, args.seed)
        _stage(audit, work / "staging")
        print(f"synthetic audit: {len(audit):,} judged rows = {args.models} models x {len(GROUPS)} groups x "
              f"{args.templates} templates x {args.names} names x {args.samples} samples "
              f"(staged in {time.perf_counter() - start:.1f} s)")
        del audit
        start = time.perf_counter()  # both timings below then start warm: the suites' libraries are imported
        import great_expectations  # noqa: F401
        print(f"great_expectations imported in {time.perf_counter() - start:.1f} s (not in the timings)")
        with_s, counts = _rebuild(work / "staging", work / "qos.duckdb", StatsSettings(args.resamples, 0))
        with duckdb.connect(str(work / "qos.duckdb"), read_only=True) as con:
            judged = con.execute("SELECT count(*) FROM judged").fetchone()[0]
        without_s, _ = _rebuild(work / "staging", work / "qos.duckdb", StatsSettings(0, 0))
        print(f"judged rows in the warehouse: {judged:,}; group_comparisons {counts['group_comparisons']:,} rows, "
              f"name_sensitivity {counts['name_sensitivity']:,}, model_comparisons {counts['model_comparisons']:,}")
        print(f"full rebuild with {args.resamples:,} bootstrap resamples: {with_s:6.1f} s")
        print(f"full rebuild without the statistics:  {without_s:6.1f} s")
        print(f"ratio (with / without): {with_s / without_s:.2f}x; the statistics cost {with_s - without_s:.1f} s "
              f"(target: the whole rebuild under 60 s on 2 cores)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
