#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install Orbyt with its dev dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "Orbyt needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.orbyt-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # not --quiet: a cold install takes a minute or more, and pip's lines are the progress
  echo "==> Installing Orbyt and its dependencies into .venv (once; about a minute cold)" >&2
  SECONDS=0
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --progress-bar on -e '.[dev]' >&2
  touch "$stamp"
  echo "==> .venv ready in ${SECONDS} s" >&2
fi
