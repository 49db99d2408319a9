"""Which modules does one request walk through? (the architecture's "walk" figure)

    python bench/walk.py                 # this checkout's src/
    python bench/walk.py --tree DIR      # another Orbyt tree (e.g. a checkout of an old commit)

Starts redis-server, the bench mock upstream and `python -m orbyt api|worker` on loopback,
sends one streamed BYOK request whose primary fails (connection refused, no retry) and
whose fallback (`backup/…`, an OpenAI-compatible upstream) answers, after two warm-up
requests, and prints the Orbyt source modules whose functions ran for it, per process (the
worker's batch line pool is off: it runs on a timer, not for the request).
Recording uses a profile hook (`sys.setprofile`) that a generated `sitecustomize` installs
on SIGUSR1 and dumps on SIGUSR2, so start-up and warm-up are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from run import HOST, PY, REPO, free_port, redis_command, wait_until

SITECUSTOMIZE = """
import os, signal, sys, threading
_ROOT, _OUT, _seen = os.environ["WALK_ROOT"], os.environ["WALK_OUT"], set()
def _prof(frame, event, arg):
    if event == "call":
        name = frame.f_code.co_filename
        if name.startswith(_ROOT):
            _seen.add(os.path.relpath(name, _ROOT))
def _start(*_):
    _seen.clear(); sys.setprofile(_prof); threading.setprofile(_prof)
def _dump(*_):
    sys.setprofile(None); threading.setprofile(None)
    with open(f"{_OUT}.{os.getpid()}", "w") as fh:
        fh.write("\\n".join(sorted(_seen)) + "\\n")
signal.signal(signal.SIGUSR1, _start)
signal.signal(signal.SIGUSR2, _dump)
"""

KEY = "sk-or-v1-walk"


def request(api: str) -> int:
    body = {
        "model": "openai/gpt-bench",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "extra": {
            "fallback_models": ["backup/gpt-bench"],
            "retry": 0,
            "byok": {"openai": "sk-proj-" + "w" * 40, "backup": "sk-" + "b" * 40},
        },
    }
    req = urllib.request.Request(
        f"{api}/v1/chat/completions",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    if "[DONE]" not in text:
        raise RuntimeError(f"unexpected answer: {text[:300]}")
    return resp.status


def _ok(check: Callable[[], bool]) -> Callable[[], bool]:
    def attempt() -> bool:
        try:
            return check()
        except OSError:
            return False

    return attempt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=REPO / "src", help="Orbyt source root")
    args = parser.parse_args()
    tree = args.tree.resolve()
    work = Path(tempfile.mkdtemp(prefix="orbyt-walk-"))
    (work / "sitecustomize.py").write_text(SITECUSTOMIZE)
    redis_port, mock_port, api_port, dead_port = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "PYTHONPATH": f"{work}{os.pathsep}{tree}",
        "WALK_ROOT": str(tree) + os.sep,
        "WALK_OUT": str(work / "walk"),
        "ORBYT_REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "ORBYT_GATEWAY_KEYS": KEY,
        "ORBYT_SECRET_KEY": secrets.token_urlsafe(48),
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": f"http://{HOST}:{dead_port}/v1",
        "ORBYT_PROVIDERS__BACKUP__ADAPTER": "openai",
        "ORBYT_PROVIDERS__BACKUP__BASE_URL": f"http://{HOST}:{mock_port}/v1",
        # The batch line pool polls on a timer of its own (every ORBYT_WORKER_POLL_DELAY),
        # not for this request; the previous release had none. Off, so the walk counts the
        # interactive request's modules only (an older tree ignores the variable).
        "ORBYT_BATCH_CONCURRENCY": "0",
    }
    procs = [
        subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--save", ""], stdout=subprocess.DEVNULL
        ),
        subprocess.Popen(
            [PY, str(REPO / "bench" / "mock_upstream.py"), "--port", str(mock_port)],
            stdout=subprocess.DEVNULL,
        ),
    ]
    try:
        wait_until(_ok(lambda: redis_command(redis_port, "PING").startswith(b"+PONG")), 10, "redis")
        api = subprocess.Popen(
            [PY, "-m", "orbyt", "api", "--host", HOST, "--port", str(api_port)], env=env, cwd=work
        )
        worker = subprocess.Popen([PY, "-m", "orbyt", "worker"], env=env, cwd=work)
        procs += [api, worker]
        base = f"http://{HOST}:{api_port}"
        wait_until(_ok(lambda: urllib.request.urlopen(f"{base}/readyz").status == 200), 60, "api")
        request(base), request(base)  # warm-up: imports, connections, first-use paths
        for proc in (api, worker):
            proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        request(base)
        time.sleep(0.5)
        for proc in (api, worker):
            proc.send_signal(signal.SIGUSR2)
        time.sleep(0.5)
        for name, proc in (("api", api), ("worker", worker)):
            mods = (work / f"walk.{proc.pid}").read_text().split()
            print(f"{name} process: {len(mods)} modules")
            for mod in mods:
                print(f"  {mod}")
        every = set()
        for proc in (api, worker):
            every |= set((work / f"walk.{proc.pid}").read_text().split())
        print(f"distinct modules in the walk: {len(every)}")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
