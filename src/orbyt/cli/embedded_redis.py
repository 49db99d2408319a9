"""A Redis for `orbyt dev`: `redis-server` from PATH on a free loopback port if there is
one, else fakeredis's in-process TCP server (with Lua, for the scripts Orbyt runs).
`ORBYT_DEV_REDIS=fakeredis` forces the fallback. redis-server runs in its own session (a
terminal's Ctrl-C does not reach it: `orbyt dev` stops it last, after the drain)."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has Linux send SIGTERM to the child when its parent dies (no
    orphan even if `orbyt dev` is SIGKILLed); None elsewhere. prctl is looked up here, in
    the parent, so the child only makes one C call between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing is listening on 127.0.0.1:{port}")


class EmbeddedRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.kind = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._server: object | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        binary = shutil.which("redis-server")
        if binary and os.environ.get("ORBYT_DEV_REDIS", "auto") != "fakeredis":
            self._dir = tempfile.TemporaryDirectory(prefix="orbyt-redis-")
            self._proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self._dir.name,
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
            self.kind = "redis-server"
        else:
            from fakeredis import TcpFakeServer

            server = TcpFakeServer(("127.0.0.1", self.port), server_type="redis")
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._server = server
            self.kind = "fakeredis"
        wait_port(self.port)
        return self

    def kill(self) -> None:
        """SIGKILL redis-server at once (stop() still cleans up); fakeredis lives in this
        process and ends with it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server.server_close()  # type: ignore[attr-defined]
        if self._dir is not None:
            self._dir.cleanup()
