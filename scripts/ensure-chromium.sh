#!/usr/bin/env bash
# Make sure Debian's chromium exists for the console's browser tests (Playwright drives it;
# `playwright install` is never used). Installed with apt-get only if missing; without root
# or apt the browser tests skip. Prints the binary's path when there is one.
set -euo pipefail
for cand in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -x "$cand" ]; then echo "$cand"; exit 0; fi
done
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if $SUDO true 2>/dev/null; then
    ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium) >&2 || true
  fi
fi
if [ -x /usr/bin/chromium ]; then echo /usr/bin/chromium; fi
exit 0
