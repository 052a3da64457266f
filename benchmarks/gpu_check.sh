#!/usr/bin/env bash
# GPU check: the judge and generation benchmarks in one run (about 8 minutes on one H100/H200), figures as JSON.
#
#   bash benchmarks/gpu_check.sh            # CUDA: Llama-2-7B architecture, random bf16 weights, no downloads
#   bash benchmarks/gpu_check.sh --small    # tiny models on CPU: same code path, same JSON keys (seconds)
#
# Environment: OUT (default benchmarks/out, git-ignored), PYTHON (default python3), BUDGET_S (default 480:
# the whole run's time limit), JUDGE_S (default 150: the judge's share, run first because it is short).
# Writes under $OUT: judge.json, generation.json (rewritten after each batch size, so a run cut short keeps
# the sizes it finished), their logs, and gpu_check.json (both files, step statuses, a summary with the
# issue's targets). Exits non-zero if a benchmark failed or ran out of time, after writing gpu_check.json.
# The benchmarks import only the pure cores: no dagster, duckdb, pandera or great_expectations needed.
set -euo pipefail

cd "$(dirname "$0")/.."
SMALL=()
case "${1:-}" in
  --small) SMALL=(--small) ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu_check.sh [--small]" >&2; exit 2 ;;
esac
OUT="${OUT:-benchmarks/out}"
PYTHON="${PYTHON:-python3}"
BUDGET_S="${BUDGET_S:-480}"
JUDGE_S="${JUDGE_S:-150}"
# random-weight models are built from configs: nothing may reach for the network
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$OUT"
rm -f "$OUT"/judge.json "$OUT"/generation.json "$OUT"/judge.log "$OUT"/generation.log "$OUT"/gpu_check.json
STARTED=$SECONDS
declare -A RC SECS

# run_step NAME LIMIT_S: one benchmark under a time limit, log teed to $OUT/NAME.log; records rc and seconds.
run_step() {
  local name=$1 limit=$2 began=$SECONDS rc=0
  echo "== $name (limit ${limit} s)"
  timeout --kill-after=15 "$limit" "$PYTHON" "benchmarks/${name}_throughput.py" ${SMALL[@]+"${SMALL[@]}"} \
    --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.log" || rc=$?
  RC[$name]=$rc
  SECS[$name]=$((SECONDS - began))
}

run_step judge $((JUDGE_S < BUDGET_S ? JUDGE_S : BUDGET_S))
LEFT=$((BUDGET_S - (SECONDS - STARTED)))
run_step generation $((LEFT > 60 ? LEFT : 60))

# Combine: both files as written, each step's exit status, and the figures the issue's targets are about.
"$PYTHON" - "$OUT" "${#SMALL[@]}" $((SECONDS - STARTED)) "$BUDGET_S" \
  "${RC[judge]}" "${SECS[judge]}" "${RC[generation]}" "${SECS[generation]}" <<'PY'
import json
import sys
from pathlib import Path

out, small, wall, budget = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
steps_argv = dict(judge=sys.argv[5:7], generation=sys.argv[7:9])


def load(name: str) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def status(rc: int) -> str:
    return "ok" if rc == 0 else "timed out" if rc in (124, 137) else f"failed (exit {rc})"


def summary(gen: dict | None, judge: dict | None) -> dict:
    runs = [r for r in (gen or {}).get("runs", []) if r.get("project_tokens_per_s")]
    big = max(runs, key=lambda r: r["batch"]) if runs else {}
    s = {"largest_batch": big.get("batch"),
         "largest_batch_naive_tokens_per_s": big.get("naive_tokens_per_s"),
         "largest_batch_project_tokens_per_s": big.get("project_tokens_per_s"),
         "largest_batch_ratio": big.get("ratio"),
         "compile_s": max((r["compile_s"] for r in runs), default=None),
         "judge_items_per_s": (judge or {}).get("label_scoring_items_per_s"),
         "judge_speedup_vs_generate_128": (judge or {}).get("speedup_vs_generate_128"),
         "judge_percent_of_matmul_rate": (judge or {}).get("percent_of_matmul_rate"),
         "matmul_tflops": (judge or {}).get("matmul_tflops")}
    at_least = lambda key, floor: None if s[key] is None else s[key] >= floor  # noqa: E731
    s["targets_met"] = {"project_tokens_per_s_ge_12500": at_least("largest_batch_project_tokens_per_s", 12500),
                        "ratio_ge_6": at_least("largest_batch_ratio", 6),
                        "judge_percent_of_matmul_ge_60": at_least("judge_percent_of_matmul_rate", 60),
                        "judge_speedup_vs_generate_128_ge_5": at_least("judge_speedup_vs_generate_128", 5)}
    return s


steps = {name: {"rc": int(rc), "seconds": int(secs), "status": status(int(rc))}
         for name, (rc, secs) in steps_argv.items()}
gen, judge = load("generation"), load("judge")
combined = {"small": small, "wall_s": wall, "budget_s": budget, "steps": steps,
            "summary": summary(gen, judge), "generation": gen, "judge": judge}
(out / "gpu_check.json").write_text(json.dumps(combined, indent=1) + "\n")

fmt = lambda v, spec=",.0f": "n/a" if v is None else format(v, spec)  # noqa: E731
where = "--small, CPU: not the GPU figures" if small else (judge or gen or {}).get("device", "no figures")
print(f"== summary ({where}; {wall} s; {out / 'gpu_check.json'})")
for run in (gen or {}).get("runs", []):
    print(f"generation batch {run['batch']}: naive {fmt(run['naive_tokens_per_s'])} | project "
          f"{fmt(run['project_tokens_per_s'])} tokens/s | ratio {fmt(run['ratio'], '.2f')}x | "
          f"compile/warm-up {fmt(run['compile_s'], '.1f')} s")
if judge:
    print(f"judge: label scoring {fmt(judge['label_scoring_items_per_s'], ',.1f')} items/s | "
          f"{fmt(judge['speedup_vs_generate_16'], '.1f')}x the 16-token, "
          f"{fmt(judge['speedup_vs_generate_128'], '.1f')}x the 128-token judge | "
          f"{fmt(judge['label_scoring_tflops'], '.3g')} TFLOP/s = "
          f"{fmt(judge['percent_of_matmul_rate'], '.0f')}% of {fmt(judge['matmul_tflops'], '.3g')} measured")
print("steps: " + ", ".join(f"{name} {s['status']} ({s['seconds']} s)" for name, s in steps.items()))
print("targets met: " + json.dumps(combined["summary"]["targets_met"]))
PY

[[ ${RC[judge]} -eq 0 && ${RC[generation]} -eq 0 ]]
