#!/usr/bin/env bash
# Make sure a redis-server binary exists for the integration tests (they start their own
# on a free loopback port). Order: PATH, then Debian/Ubuntu packages, then the PyPI wheel.
# Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v redis-server >/dev/null 2>&1; then command -v redis-server; exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if $SUDO true 2>/dev/null; then
    ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server) >&2 || true
    if command -v redis-server >/dev/null 2>&1; then command -v redis-server; exit 0; fi
  fi
fi
.venv/bin/python -m pip install --quiet redis-server >&2
.venv/bin/python -c 'import redis_server; print(redis_server.REDIS_SERVER_PATH)'
