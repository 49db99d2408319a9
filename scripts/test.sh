#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit + integration with real processes),
# with a coverage report over src/ (API and worker subprocesses included) and a floor.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
ORBYT_REDIS_SERVER="$(scripts/ensure-redis.sh | tail -n 1)"
export ORBYT_REDIS_SERVER
CHROMIUM_BIN="$(scripts/ensure-chromium.sh | tail -n 1)"  # console browser tests
export CHROMIUM_BIN
rm -f .coverage .coverage.*
exec .venv/bin/python -m pytest --cov --cov-report=term:skip-covered \
  --cov-fail-under="${ORBYT_COVERAGE_FLOOR:-90}" "$@"
