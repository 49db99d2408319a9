"""`orbyt dev`: API + workers + an embedded Redis in one command, offline.

One owner, `DevRunner`, for the whole process tree:

    check the port → start Redis → start the workers and the API → wait until ready
    (fail at once if a child exits) → banner + `.orbyt/dev.json` → wait for a signal or a
    child's exit → drain: the API first (stops accepting, open streams finish), then the
    workers (running jobs finish), then Redis.

Every child runs in its own session, so a terminal's Ctrl-C (sent to the foreground
process group) reaches only this process, which then stops the children in that order.
SIGINT, SIGTERM and SIGHUP all drain, whatever disposition the parent shell left (a
script's background job starts with SIGINT ignored); a second signal kills every child at
once. On Linux each child also gets SIGTERM if this process dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from types import FrameType

from orbyt.cli import devstate
from orbyt.cli.embedded_redis import EmbeddedRedis, die_with_parent, free_port
from orbyt.cli.errors import CliError
from orbyt.shared.settings import get_settings

API_DRAIN_SECONDS = 35.0  # uvicorn's graceful shutdown is 30 s
WORKER_DRAIN_SECONDS = 35.0  # the worker waits 30 s for running jobs
READY_SECONDS = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

SNIPPET = """\
from openai import OpenAI

client = OpenAI(base_url="{base_url}", api_key="{key}")
response = client.chat.completions.create(
    model="mock/echo",
    messages=[{{"role": "user", "content": "Hello from Orbyt"}}],
    extra_body={{"extra": {{"fallback_models": ["mock/echo-backup"], "provider": "cheap",
                           "retry": 3}}}},
)
print(response.choices[0].message.content)
"""


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (as uvicorn would, SO_REUSEADDR), else None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _local(host: str) -> str:
    """Where to reach a server bound to `host` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


class DevRunner:
    """Runs and stops the `orbyt dev` process tree (see the module docstring)."""

    def __init__(self, host: str, port: int, workers: int, log_level: str) -> None:
        self.host, self.port, self.workers, self.log_level = host, port, workers, log_level
        local = _local(host)
        self.base = f"http://{f'[{local}]' if ':' in local else local}:{port}"
        self.key = os.environ.get("ORBYT_DEV_KEY") or "sk-or-v1-" + secrets.token_hex(32)
        self.api: subprocess.Popen[bytes] | None = None
        self.worker_procs: list[subprocess.Popen[bytes]] = []
        self.redis: EmbeddedRedis | None = None
        self.signals = 0

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals == 1:
            name = signal.Signals(signum).name
            # os.write: a signal handler must not re-enter a buffered stream mid-print
            os.write(2, f"\norbyt dev: {name}: draining (again to force)\n".encode())
        else:
            self._kill_all()

    def _kill_all(self) -> None:
        for proc in self._procs():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if self.redis is not None:
            self.redis.kill()

    def _procs(self) -> list[subprocess.Popen[bytes]]:
        return [*self.worker_procs, *([self.api] if self.api else [])]

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        problem = port_problem(self.host, self.port)
        if problem:
            raise CliError(
                f"port {self.port} on {self.host} is not available ({problem}); "
                f"choose another with --port, e.g. --port {free_port()}"
            )
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            return self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self) -> int:
        try:
            self.redis = EmbeddedRedis()
            try:
                self.redis.start()
            except RuntimeError as exc:
                raise CliError(f"the embedded Redis did not start ({exc})") from None
            self._start_children(self.redis.url)
            if not self._wait_ready():
                return 0 if self.signals else self._child_died("while starting")
            devstate.write(self.redis.url, self.base + "/v1")
            print(self._banner(self.redis), flush=True)
            while not self.signals and all(p.poll() is None for p in self._procs()):
                time.sleep(0.2)
            if not self.signals:
                return self._child_died("")
            return 1 if self.signals > 1 else 0
        finally:
            self._stop()

    def _child_died(self, when: str) -> int:
        dead = next(p for p in self._procs() if p.poll() is not None)
        role = "the API" if dead is self.api else "a worker"
        where = f" {when}" if when else ""
        print(
            f"orbyt dev: {role} exited{where} (code {dead.returncode}); stopping",
            file=sys.stderr,
            flush=True,
        )
        return 1

    def _start_children(self, redis_url: str) -> None:
        env = dict(os.environ)
        env.update(
            {"ORBYT_ENV": "dev", "ORBYT_REDIS_URL": redis_url, "ORBYT_GATEWAY_KEYS": self.key}
        )
        if get_settings().secret_key is None:  # else the environment's or the config file's
            env["ORBYT_SECRET_KEY"] = secrets.token_urlsafe(48)
        cmd = [sys.executable, "-m", "orbyt"]
        quiet = ["--log-level", self.log_level, "--no-env-check"]
        for _ in range(self.workers):
            self.worker_procs.append(self._spawn([*cmd, "worker", *quiet], env))
        self.api = self._spawn(
            [*cmd, "api", "--host", self.host, "--port", str(self.port), *quiet], env
        )

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=die_with_parent())

    def _wait_ready(self) -> bool:
        """True once /readyz answers 200; False on a signal or a child's exit."""
        end = time.monotonic() + READY_SECONDS
        while time.monotonic() < end:
            if self.signals or any(p.poll() is not None for p in self._procs()):
                return False
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.base + "/readyz", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return True
            time.sleep(0.1)
        raise CliError(f"the gateway did not become ready within {READY_SECONDS:.0f} s")

    def _banner(self, redis: EmbeddedRedis) -> str:
        base = self.base + "/v1"
        return (
            f"\nOrbyt is running (Redis: {redis.kind} on {redis.url}).\n"
            f"  base URL:    {base}\n  gateway key: {self.key}\n\n"
            "For `orbyt keys` / `orbyt usage` in another shell (found automatically from "
            "this directory):\n"
            f"  export ORBYT_REDIS_URL={redis.url}\n\n"
            "Try it:\n\n" + SNIPPET.format(base_url=base, key=self.key)
        )

    def _stop(self) -> None:
        """API first, then workers, then Redis; a second signal turns waits into kills."""
        if self.api is not None:
            self._terminate([self.api], API_DRAIN_SECONDS)
        self._terminate(self.worker_procs, WORKER_DRAIN_SECONDS)
        if self.redis is not None:
            self.redis.stop()
        devstate.remove()

    def _terminate(self, procs: list[subprocess.Popen[bytes]], seconds: float) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + seconds
        for proc in procs:
            while proc.poll() is None:
                if self.signals > 1 or time.monotonic() > end:
                    proc.kill()
                    proc.wait()
                    break
                time.sleep(0.05)


def run_dev(host: str, port: int, workers: int, log_level: str = "warning") -> int:
    return DevRunner(host, port, workers, log_level).run()
