#!/usr/bin/env bash
# Debian packages the test suite uses for real services on loopback: redis-server (Celery broker),
# postgresql (the shared Dagster instance of the Celery test) and chromium (the report's browser test). Installed only when missing, and only
# where apt-get can run as root (CI, a fresh machine); elsewhere the tests that need them skip and say so.
# Usage: bash scripts/system_packages.sh [extra packages, e.g. chromium for scripts/ui_screenshot.py]
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
for pkg in "$@"; do command -v "$pkg" >/dev/null || missing+=("$pkg"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system packages: ${missing[*]} missing and not installable here (needs root and apt-get); their tests skip" >&2
  exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A failed install must not stop the test run: the tests that need these services then skip and say so.
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "system packages: could not install ${missing[*]}; their tests skip" >&2
fi
# The Debian packages start their own services where systemd runs; the tests start private ones on
# free loopback ports instead, so nothing here depends on those.
