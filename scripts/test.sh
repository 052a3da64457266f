#!/usr/bin/env bash
# Set up (with test tools) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/system_packages.sh   # redis-server, postgresql for the Celery test (root + apt-get only)
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
