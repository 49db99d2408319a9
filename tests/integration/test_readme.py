"""The README's first-request snippet, run exactly as written against `orbyt dev`."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.gateway import ROOT, free_port

pytestmark = pytest.mark.integration


def snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- first-request:start -->\s*```python\n(.*?)```", readme, re.S)
    assert block, "README lost its first-request block"
    return block.group(1)


@pytest.mark.parametrize("redis", ["auto", "fakeredis"])
def test_readme_first_request_against_orbyt_dev(redis: str) -> None:
    """`orbyt dev` with redis-server, and with the in-process fakeredis fallback."""
    port = free_port()
    key = "sk-or-v1-" + "d" * 64
    env = {
        **os.environ,
        "ORBYT_DEV_KEY": key,
        "PYTHONPATH": str(ROOT),
        "ORBYT_DEV_REDIS": redis,
        "ORBYT_WORKER_METRICS_PORT": "0",
    }
    if os.environ.get("ORBYT_REDIS_SERVER"):
        env["PATH"] = os.path.dirname(os.environ["ORBYT_REDIS_SERVER"]) + os.pathsep + env["PATH"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "orbyt", "dev", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1),
            ):
                break
            time.sleep(0.1)
        code = snippet().replace("http://127.0.0.1:8080/v1", f"http://127.0.0.1:{port}/v1")
        code = code.replace("sk-or-v1-...", key)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
        printed = out.getvalue().strip()
        assert printed.startswith("Hello from Orbyt Hello from Orbyt")
        assert printed.endswith("mock/echo")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
