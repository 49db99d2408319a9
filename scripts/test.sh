#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit + integration with real processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
ORBYT_REDIS_SERVER="$(scripts/ensure-redis.sh | tail -n 1)"
export ORBYT_REDIS_SERVER
exec .venv/bin/python -m pytest "$@"
