"""One master, one replica and three `redis-server --sentinel` on loopback, with short
`down-after-milliseconds` and `failover-timeout` so a failover takes a couple of seconds."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from orbyt.cli.embedded_redis import free_port, wait_port
from tests.gateway import RedisServer

SERVICE = "orbyt"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000


class SentinelSet:
    def __init__(self) -> None:
        self.master = RedisServer()
        self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.master.port))
        self.ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="orbyt-test-sentinel-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/{db}"

    def start(self) -> SentinelSet:
        self.master.start()
        self.replica.start()
        for i, port in enumerate(self.ports):
            conf = self.dir / f"sentinel{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [self.master.binary, str(conf), "--sentinel", "--loglevel", "warning"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_port(port)
        self._wait(self._settled, "sentinels did not find the replica and each other")
        return self

    def master_port(self) -> int:
        s: Any = redis.Redis(port=self.ports[0])
        try:
            return int(s.sentinel_get_master_addr_by_name(SERVICE)[1])
        finally:
            s.close()

    def _settled(self) -> bool:
        for port in self.ports:
            s: Any = redis.Redis(port=port)
            try:
                info = s.sentinel_master(SERVICE)
                if info["num-slaves"] < 1 or info["num-other-sentinels"] < 2:
                    return False
            finally:
                s.close()
        r: Any = redis.Redis(port=self.replica.port)
        try:
            return bool(r.info("replication")["master_link_status"] == "up")
        finally:
            r.close()

    def wait_failover(self, timeout: float = 15.0) -> float:
        """Seconds until the sentinels name the replica as master."""
        started = time.monotonic()
        self._wait(lambda: self.master_port() == self.replica.port, "no failover", timeout)
        return time.monotonic() - started

    @staticmethod
    def _wait(check: Any, what: str, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if check():
                    return
            except (redis.RedisError, OSError, KeyError):
                pass
            time.sleep(0.1)
        raise RuntimeError(what)

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.master.stop()
        self.replica.stop()
