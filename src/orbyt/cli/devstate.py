"""`.orbyt/dev.json`: how the CLI finds a running `orbyt dev` started in this directory.

It holds the embedded Redis URL, the base URL and the runner's pid — never a key. The
admin commands (`orbyt keys`, `orbyt usage`) use it when no Redis URL is configured
(`ORBYT_REDIS_URL`, `REDIS_URL` or `redis_url` in the config file) and the runner is alive;
`orbyt batch` takes its base URL from it when `--base-url` / `ORBYT_BASE_URL` is not set.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

STATE_FILE = Path(".orbyt") / "dev.json"


def write(redis_url: str, base_url: str) -> None:
    """Best effort: a directory `orbyt dev` cannot write to only loses the look-up."""
    state = {"redis_url": redis_url, "base_url": base_url, "pid": os.getpid()}
    with contextlib.suppress(OSError):
        STATE_FILE.parent.mkdir(exist_ok=True)
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(STATE_FILE)


def remove() -> None:
    """Delete the state file if this process wrote it (another runner may have since)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
            STATE_FILE.unlink()


def running_redis_url() -> str | None:
    """The Redis URL of a live `orbyt dev` started in this directory, else None."""
    return _running("redis_url")


def running_base_url() -> str | None:
    """The API base URL (…/v1) of a live `orbyt dev` started in this directory, else None."""
    return _running("base_url")


def _running(field: str) -> str | None:
    try:
        state = json.loads(STATE_FILE.read_text())
        pid, value = int(state["pid"]), str(state[field])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return value
