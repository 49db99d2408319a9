#!/usr/bin/env bash
# Set everything up and run the gateway locally: API + worker + embedded Redis + mock provider.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/orbyt dev "$@"
