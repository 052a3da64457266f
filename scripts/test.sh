#!/usr/bin/env bash
# Set up (with test tools) and run the test suite. Extra arguments go to pytest.
# The default tier leaves out the tests marked slow (system tests: Dagster UI and daemon end to end, the
# crash harness, the embedded model): about 10 minutes on 2 cores. CI (CI=true, or QOS_TEST_ALL=1) runs
# every test; so does `bash scripts/test.sh -m ""`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/system_packages.sh   # redis-server, postgresql, chromium (root + apt-get only)
tier=(-m "not slow")
if [ "${CI:-}" = "true" ] || [ "${QOS_TEST_ALL:-}" = "1" ]; then tier=(); fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "${tier[@]}" "$@"
