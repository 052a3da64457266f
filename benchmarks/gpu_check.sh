#!/usr/bin/env bash
# GPU check: the judge, the generation and the 70B benchmarks in one run (under 9 minutes on one H200),
# figures as JSON.
#
#   bash benchmarks/gpu_check.sh            # CUDA: Llama-2-7B and -70B architectures, random weights, no downloads
#   bash benchmarks/gpu_check.sh --small    # tiny models on CPU: same code paths, same JSON keys (seconds)
#
# Environment: OUT (default benchmarks/out, git-ignored), PYTHON (default python3), and each step's time
# limit: JUDGE_S (default 150), GENERATION_S (230), LLAMA70B_S (130): 510 s in all, plus start-ups. Each
# benchmark is told its limit minus a margin (--budget-s) and skips the runs that would start too late,
# so a slow step ends with the figures it has; `timeout` kills what overruns all the same.
# Writes under $OUT: judge.json, generation.json, llama70b.json (rewritten after each run, so a step cut
# short keeps what it finished), their logs, and gpu_check.json (the three files, step statuses, a summary
# with the issue's targets). Exits non-zero if a step failed or ran out of time, after writing gpu_check.json.
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
JUDGE_S="${JUDGE_S:-150}"
GENERATION_S="${GENERATION_S:-230}"
LLAMA70B_S="${LLAMA70B_S:-130}"
BUDGET_S=$((JUDGE_S + GENERATION_S + LLAMA70B_S))
# random-weight models are built from configs: nothing may reach for the network
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$OUT"
for name in judge generation llama70b gpu_check; do rm -f "$OUT/$name.json" "$OUT/$name.log"; done
STARTED=$SECONDS
declare -A RC SECS

# run_step NAME SCRIPT LIMIT_S MARGIN_S: one benchmark under a time limit, told LIMIT-MARGIN as its budget
# (judge has no runs to skip: it gets none), log teed to $OUT/NAME.log; records rc and seconds.
run_step() {
  local name=$1 script=$2 limit=$3 margin=$4 began=$SECONDS rc=0 budget=()
  [[ $margin -gt 0 ]] && budget=(--budget-s $((limit - margin)))
  echo "== $name (limit ${limit} s)"
  timeout --kill-after=15 "$limit" "$PYTHON" "benchmarks/$script" ${SMALL[@]+"${SMALL[@]}"} ${budget[@]+"${budget[@]}"} \
    --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.log" || rc=$?
  RC[$name]=$rc
  SECS[$name]=$((SECONDS - began))
}

run_step judge judge_throughput.py "$JUDGE_S" 0
run_step generation generation_throughput.py "$GENERATION_S" 70
run_step llama70b llama70b.py "$LLAMA70B_S" 50

# Combine: both files as written, each step's exit status, and the figures the issue's targets are about.
"$PYTHON" - "$OUT" "${#SMALL[@]}" $((SECONDS - STARTED)) "$BUDGET_S" \
  "${RC[judge]}" "${SECS[judge]}" "${RC[generation]}" "${SECS[generation]}" "${RC[llama70b]}" "${SECS[llama70b]}" <<'PY'
import json
import sys
from pathlib import Path

out, small, wall, budget = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
steps_argv = dict(judge=sys.argv[5:7], generation=sys.argv[7:9], llama70b=sys.argv[9:11])


def load(name: str) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def status(rc: int) -> str:
    return "ok" if rc == 0 else "timed out" if rc in (124, 137) else f"failed (exit {rc})"


def summary(gen: dict | None, judge: dict | None, big: dict | None) -> dict:
    g, j, b = (gen or {}).get("summary") or {}, judge or {}, big or {}
    s = {"best_run": g.get("best_run"), "best_useful_tokens_per_s": g.get("best_useful_tokens_per_s"),
         "naive_run": g.get("naive_run"), "naive_useful_tokens_per_s": g.get("naive_useful_tokens_per_s"),
         "ratio": g.get("ratio"), "partition_useful_tokens_per_s": g.get("partition_useful_tokens_per_s"),
         "judge_items_per_s": j.get("label_scoring_items_per_s"),
         "judge_speedup_vs_generate_128": j.get("speedup_vs_generate_128"),
         "judge_percent_of_matmul_rate": j.get("percent_of_matmul_rate"),
         "judge_eager_percent_of_matmul_rate": j.get("eager_percent_of_matmul_rate"),
         "matmul_tflops": j.get("matmul_tflops"),
         "llama70b_recommended": b.get("recommended"), "llama70b_weights_gib": (b.get("memory") or {}).get("weights_gib")}
    at_least = lambda key, floor: None if s[key] is None else s[key] >= floor  # noqa: E731
    s["targets_met"] = {"useful_tokens_per_s_ge_20000": at_least("best_useful_tokens_per_s", 20000),
                        "ratio_ge_8": at_least("ratio", 8),
                        "judge_percent_of_matmul_ge_65": at_least("judge_percent_of_matmul_rate", 65),
                        "judge_speedup_vs_generate_128_ge_5": at_least("judge_speedup_vs_generate_128", 5),
                        "llama70b_figure": s["llama70b_recommended"] is not None}
    return s


steps = {name: {"rc": int(rc), "seconds": int(secs), "status": status(int(rc))}
         for name, (rc, secs) in steps_argv.items()}
gen, judge, big = load("generation"), load("judge"), load("llama70b")
combined = {"small": small, "wall_s": wall, "budget_s": budget, "steps": steps,
            "summary": summary(gen, judge, big), "generation": gen, "judge": judge, "llama70b": big}
(out / "gpu_check.json").write_text(json.dumps(combined, indent=1) + "\n")

fmt = lambda v, spec=",.0f": "n/a" if v is None else format(v, spec)  # noqa: E731
where = "--small, CPU: not the GPU figures" if small else (judge or gen or {}).get("device", "no figures")
print(f"== summary ({where}; {wall} s; {out / 'gpu_check.json'})")
for name, doc in (("generation", gen), ("llama70b", big)):
    for run in (doc or {}).get("runs", []) + (doc or {}).get("partition_runs", []):
        figure = (f"{fmt(run['useful_tokens_per_s'])} useful tokens/s, peak {fmt(run['peak_memory_gib'], '.1f')} GiB"
                  if run["useful_tokens_per_s"] else run["error"])
        print(f"{name} {run['name']} ({run['rows']} rows): {figure}")
s = combined["summary"]
print(f"generation: best {s['best_run']} {fmt(s['best_useful_tokens_per_s'])} useful tokens/s = "
      f"{fmt(s['ratio'], '.1f')}x naive ({s['naive_run']}: {fmt(s['naive_useful_tokens_per_s'])})")
if judge:
    print(f"judge: label scoring {fmt(judge['label_scoring_items_per_s'], ',.1f')} items/s | "
          f"{fmt(judge['speedup_vs_generate_16'], '.1f')}x the 16-token, "
          f"{fmt(judge['speedup_vs_generate_128'], '.1f')}x the 128-token judge | "
          f"{fmt(judge['label_scoring_tflops'], '.3g')} TFLOP/s = {fmt(judge['percent_of_matmul_rate'], '.0f')}% "
          f"of {fmt(judge['matmul_tflops'], '.3g')} measured (eager: {fmt(judge['eager_percent_of_matmul_rate'], '.0f')}%)")
print(f"llama70b: {fmt(s['llama70b_weights_gib'], '.1f')} GiB of weights; recommended {s['llama70b_recommended']}")
print("steps: " + ", ".join(f"{name} {st['status']} ({st['seconds']} s)" for name, st in steps.items()))
print("targets met: " + json.dumps(s["targets_met"]))
PY

[[ ${RC[judge]} -eq 0 && ${RC[generation]} -eq 0 && ${RC[llama70b]} -eq 0 ]]
