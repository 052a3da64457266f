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
                   "model_build_s", "settings", "runs", "complete"}
SETTINGS_KEYS = {"batch_sizes", "prompt_len", "new_tokens", "repeats", "sample", "compile"}
RUN_KEYS = {"batch", "tokens", "naive_s", "naive_tokens_per_s", "project_s", "project_tokens_per_s", "ratio",
            "project_warmup_s", "compile_s", "error"}
JUDGE_KEYS = {"benchmark", "small", "device", "dtype", "model", "batch", "input_tokens", "repeats", "torch",
              "transformers", "python", "model_build_s", "label_scoring_items_per_s", "label_scoring_tflops",
              "generate_16_items_per_s", "generate_128_items_per_s", "speedup_vs_generate_16",
              "speedup_vs_generate_128", "matmul_tflops", "share_of_matmul_rate", "percent_of_matmul_rate",
              "peak_memory_gib"}
COMBINED_KEYS = {"small", "wall_s", "budget_s", "steps", "summary", "generation", "judge"}
SUMMARY_KEYS = {"largest_batch", "largest_batch_naive_tokens_per_s", "largest_batch_project_tokens_per_s",
                "largest_batch_ratio", "compile_s", "judge_items_per_s", "judge_speedup_vs_generate_128",
                "judge_percent_of_matmul_rate", "matmul_tflops", "targets_met"}
TARGET_KEYS = {"project_tokens_per_s_ge_12500", "ratio_ge_6", "judge_percent_of_matmul_ge_60",
               "judge_speedup_vs_generate_128_ge_5"}


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
    assert {p.name for p in out.iterdir()} == {"gpu_check.json", "generation.json", "judge.json",
                                               "generation.log", "judge.log"}


@pytest.mark.slow
def test_generation_figures(check) -> None:
    gen = _load(check[0], "generation")
    assert set(gen) == GENERATION_KEYS and set(gen["settings"]) == SETTINGS_KEYS
    assert gen["complete"] and gen["small"] and gen["device"] == "cpu" and not gen["settings"]["compile"]
    assert [run["batch"] for run in gen["runs"]] == gen["settings"]["batch_sizes"] == [2, 4]
    for run in gen["runs"]:
        assert set(run) == RUN_KEYS and run["error"] is None
        assert run["tokens"] == run["batch"] * gen["settings"]["new_tokens"]
        assert all(_positive(run[k]) for k in ("naive_s", "naive_tokens_per_s", "project_s",
                                               "project_tokens_per_s", "ratio", "project_warmup_s"))
        assert run["naive_tokens_per_s"] == pytest.approx(run["tokens"] / run["naive_s"])
        assert run["project_tokens_per_s"] == pytest.approx(run["tokens"] / run["project_s"])
        assert run["ratio"] == pytest.approx(run["project_tokens_per_s"] / run["naive_tokens_per_s"])
        assert run["compile_s"] == pytest.approx(max(0.0, run["project_warmup_s"] - run["project_s"]))


@pytest.mark.slow
def test_judge_figures(check) -> None:
    judge = _load(check[0], "judge")
    assert set(judge) == JUDGE_KEYS and judge["small"] and judge["device"] == "cpu"
    rates = ("label_scoring_items_per_s", "label_scoring_tflops", "generate_16_items_per_s",
             "generate_128_items_per_s", "matmul_tflops", "share_of_matmul_rate")
    assert all(_positive(judge[k]) for k in rates)
    assert judge["speedup_vs_generate_128"] == pytest.approx(
        judge["label_scoring_items_per_s"] / judge["generate_128_items_per_s"])
    assert judge["speedup_vs_generate_16"] == pytest.approx(
        judge["label_scoring_items_per_s"] / judge["generate_16_items_per_s"])
    assert judge["share_of_matmul_rate"] == pytest.approx(judge["label_scoring_tflops"] / judge["matmul_tflops"])
    assert judge["percent_of_matmul_rate"] == pytest.approx(100 * judge["share_of_matmul_rate"])
    assert judge["peak_memory_gib"] is None  # CUDA only; the key is there all the same


@pytest.mark.slow
def test_combined_file(check) -> None:
    out = check[0]
    combined = _load(out, "gpu_check")
    assert set(combined) == COMBINED_KEYS and combined["small"]
    assert combined["generation"] == _load(out, "generation") and combined["judge"] == _load(out, "judge")
    assert {name: s["status"] for name, s in combined["steps"].items()} == {"judge": "ok", "generation": "ok"}
    summary, largest = combined["summary"], combined["generation"]["runs"][-1]
    assert set(summary) == SUMMARY_KEYS and set(summary["targets_met"]) == TARGET_KEYS
    assert summary["largest_batch"] == largest["batch"]
    assert summary["largest_batch_project_tokens_per_s"] == largest["project_tokens_per_s"]
    assert summary["largest_batch_ratio"] == largest["ratio"]
    assert summary["judge_percent_of_matmul_rate"] == combined["judge"]["percent_of_matmul_rate"]
    assert all(isinstance(v, bool) for v in summary["targets_met"].values())
