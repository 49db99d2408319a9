"""Real processes for integration tests: a redis-server on a free loopback port, and Orbyt's
API and worker processes started exactly as in production (`python -m orbyt api|worker`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from orbyt.cli.embedded_redis import free_port as free_port
from orbyt.cli.embedded_redis import wait_port

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_KEY = "sk-or-v1-" + "7" * 64
SECRET_KEY = "Zt8qL2mVx9RwK4pN7sJc3hY6bD1fG5aQ0eUiOoTr"


class RedisServer:
    """A redis-server on a free loopback port. By default without persistence; `persist`
    turns AOF on (`appendfsync always`, what the state role runs with); `tls` = (cert, key,
    CA) serves TLS only; `args` are more redis-server options (e.g. `--maxmemory`)."""

    def __init__(
        self,
        *args: str,
        persist: bool = False,
        tls: tuple[str, str, str] | None = None,
        port: int | None = None,
    ) -> None:
        binary = os.environ.get("ORBYT_REDIS_SERVER") or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("integration tests need redis-server on PATH (see README)")
        self.binary = binary
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="orbyt-test-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self._next_db = 0
        self.args = list(args)
        self.persist = persist
        self.tls = tls

    def command(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persist
            else ["--save", "", "--appendonly", "no"]
        )
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            cert, key, ca = self.tls
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert]
            ports += ["--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
        return [
            self.binary,
            *ports,
            "--bind",
            "127.0.0.1",
            *persistence,
            "--dir",
            self.dir,
            "--databases",
            "64",
            "--loglevel",
            "warning",
            *self.args,
        ]

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)
        return self

    def url(self, db: int = 0) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/{db}"

    def new_db_url(self) -> str:
        """Each gateway gets its own database so queues never mix between tests."""
        self._next_db = self._next_db % 63 + 1
        return f"redis://127.0.0.1:{self.port}/{self._next_db}"

    def kill(self) -> None:
        """Stop at once (SIGKILL), keeping the data directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, keep_data: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, keep_data: bool = False) -> None:
        self.stop(keep_data)
        if not keep_data:
            self.dir = tempfile.mkdtemp(prefix="orbyt-test-redis-")
        self.start()


class Gateway:
    """One API process and N worker processes sharing a Redis database."""

    def __init__(
        self,
        redis_url: str,
        env: dict[str, str] | None = None,
        workers: int = 1,
        apis: int = 1,
        log_level: str = "info",
    ) -> None:
        self.redis_url = redis_url
        self.log_level = log_level
        self.ports = [free_port() for _ in range(apis)]
        self.logdir = Path(tempfile.mkdtemp(prefix="orbyt-test-logs-"))
        self.env = {
            **os.environ,
            "ORBYT_ENV": "production",
            "ORBYT_REDIS_URL": redis_url,
            "ORBYT_GATEWAY_KEYS": GATEWAY_KEY,
            "ORBYT_SECRET_KEY": SECRET_KEY,
            "ORBYT_PICKUP_TIMEOUT": "2",
            "ORBYT_HEARTBEAT_INTERVAL": "0.5",
            "ORBYT_HEARTBEAT_TIMEOUT": "3",
            "ORBYT_WORKER_METRICS_PORT": "0",
            "ORBYT_USAGE_FLUSH_INTERVAL": "0.05",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        self.apis: list[subprocess.Popen[bytes]] = []
        self._n_workers = workers

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}/v1"

    def url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        with open(self.logdir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "orbyt", *args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = self._spawn(["worker", "--log-level", self.log_level], f"worker{len(self.workers)}")
        self.workers.append(proc)
        return proc

    def start(self, wait_workers: bool = True) -> Gateway:
        for _ in range(self._n_workers):
            self.start_worker()
        for i, port in enumerate(self.ports):
            self.apis.append(
                self._spawn(
                    [
                        "api",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--log-level",
                        self.log_level,
                    ],
                    f"api{i}",
                )
            )
        for i in range(len(self.ports)):
            self.wait_ready(i, "/readyz" if wait_workers and self._n_workers else "/healthz")
        return self

    def wait_ready(self, i: int = 0, path: str = "/readyz", timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for proc in self.apis + self.workers:
                if proc.poll() is not None:
                    raise RuntimeError(f"a gateway process exited early:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url(i) + path, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway not ready:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.logdir.glob("*.log"))
        )

    def all_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logdir.glob("*.log"))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for proc in self.apis + self.workers:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self.apis + self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.logdir, ignore_errors=True)

    def __enter__(self) -> Gateway:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()
