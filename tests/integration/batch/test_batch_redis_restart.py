"""The state Redis (AOF on, fsync always) restarted mid-batch: the batch completes with
every custom_id exactly once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator

import pytest

from orbyt.cli.embedded_redis import free_port, wait_port
from tests.gateway import Gateway
from tests.integration.batch.conftest import gateway_env
from tests.integration.batch.support import MarkerOpenAI, client, line, results, submit, wait
from tests.integration.batch.test_batch_faults import _wait_progress

pytestmark = pytest.mark.integration


class AofRedis:
    def __init__(self) -> None:
        self.binary = os.environ.get("ORBYT_REDIS_SERVER") or shutil.which("redis-server") or ""
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="orbyt-test-aof-")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        self.proc = subprocess.Popen(
            [self.binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def aof_redis() -> Iterator[AofRedis]:
    server = AofRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def test_state_redis_restarted_mid_batch(aof_redis: AofRedis, fake: MarkerOpenAI) -> None:
    url = f"redis://127.0.0.1:{aof_redis.port}/0"
    with Gateway(url, gateway_env(fake), workers=1) as gw:
        c = client(gw.base_url)
        n = 120
        batch = submit(c, [line(f"a{i}", f"SLOW {i}") for i in range(n)])
        _wait_progress(c, batch.id, 20)
        aof_redis.stop()
        aof_redis.start()
        done = wait(c, batch.id, timeout=90)
        assert done.status == "completed"
        out, err = results(c, done)
        ids = Counter(x["custom_id"] for x in out + err)
        assert sorted(ids) == sorted(f"a{i}" for i in range(n))
        assert set(ids.values()) == {1}
