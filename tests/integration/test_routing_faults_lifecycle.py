"""Fault injection, part 4: the gateway's own processes fail under a running stream
(DESIGN §6.2, §10, §11): a worker killed, Redis restarted, worker and API drained on SIGTERM.
Each test gets its own gateway (and the Redis test its own redis-server)."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakes import Reply
from tests.gateway import Gateway, RedisServer
from tests.integration.faults_support import (
    HEARTBEAT_TIMEOUT,
    MSG,
    Fakes,
    client,
    read_stream,
    running_fakes,
    tokens,
    wait_until,
)

pytestmark = pytest.mark.integration

SLOW = Reply(tokens=40, per_token=0.05)  # two seconds of stream


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture
def gw(redis_server: RedisServer, fakes: Fakes) -> Iterator[Gateway]:
    fakes.reset()
    with Gateway(redis_server.new_db_url(), fakes.env(), workers=1) as gateway:
        yield gateway


def open_stream(gw: Gateway, first: int = 5) -> tuple[Any, str]:
    """Start a stream and read `first` content tokens of it."""
    stream = client(gw).chat.completions.create(
        model="openai/gpt-5-mini", messages=MSG, stream=True
    )
    parts: list[str] = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
            if len(parts) == first:
                break
    return stream, "".join(parts)


def new_worker(gw: Gateway) -> subprocess.Popen[bytes]:
    proc = gw.start_worker()
    log = gw.logdir / f"worker{len(gw.workers) - 1}.log"
    assert wait_until(lambda: log.exists() and "worker ready" in log.read_text(), 15)
    return proc


def exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


# 18 ----------------------------------------------------------------------------------
def test_worker_killed_mid_stream(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=400, per_token=0.05))
    stream, head = open_stream(gw)
    assert head == tokens(0, 5)
    worker = gw.workers[0]
    worker.kill()
    killed_at = time.monotonic()
    got = read_stream(stream)
    took = time.monotonic() - killed_at
    assert isinstance(got.error, openai.APIError)  # a clean error, never a clean end
    assert "stopped responding" in got.error.message
    assert got.finishes == []
    assert took < HEARTBEAT_TIMEOUT + 1.5
    worker.wait(5)
    gw.workers.remove(worker)
    # a new worker never re-runs the half-streamed job, and serves new requests
    new_worker(gw)
    fakes.primary.script(Reply(text="fresh"))
    r = client(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    assert r.choices[0].message.content == "fresh"
    time.sleep(0.5)
    assert len(fakes.primary.requests) == 2
    assert [bool(q.json.get("stream")) for q in fakes.primary.requests] == [True, False]


RESUME_S = 2.0  # how long an in-flight reply waits for Redis to come back (issue 11)


def test_redis_gone_for_longer_than_the_resume_window_mid_stream(fakes: Fakes) -> None:
    """Redis stays away past ORBYT_REPLY_RESUME_S (shorter outages are resumed, see
    tests/integration/redis/test_resume.py): the stream ends with a clear error then."""
    fakes.reset()
    server = RedisServer().start()  # its own: the other tests' Redis stays up
    try:
        env = {**fakes.env(), "ORBYT_REPLY_RESUME_S": str(RESUME_S)}
        with Gateway(server.new_db_url(), env, workers=1) as gw:
            fakes.primary.script(Reply(tokens=400, per_token=0.05))
            stream, head = open_stream(gw)
            assert head == tokens(0, 5)
            down_at = time.monotonic()
            server.stop()
            got = read_stream(stream)
            assert isinstance(got.error, openai.APIError)  # a clean error, not a hang
            assert "Redis" in got.error.message and "could not resume" in got.error.message
            assert got.finishes == []
            assert RESUME_S - 0.5 < time.monotonic() - down_at < RESUME_S + 1.5
            # the worker gives up the upstream call too
            assert fakes.primary.wait_for_disconnects(1, timeout=HEARTBEAT_TIMEOUT)
            # while Redis is down a request fails at once with a clear 503
            started = time.monotonic()
            with pytest.raises(openai.InternalServerError) as info:
                client(gw, timeout=10).chat.completions.create(
                    model="openai/gpt-5-mini", messages=MSG
                )
            assert info.value.status_code == 503
            assert time.monotonic() - started < 2
            # once Redis is back, new requests succeed (stream and non-stream)
            server.dir = tempfile.mkdtemp(prefix="orbyt-test-redis-")
            server.start()
            fakes.primary.default = Reply(text="back again")
            r = client(gw, timeout=10).chat.completions.create(
                model="openai/gpt-5-mini", messages=MSG
            )
            assert r.choices[0].message.content == "back again"
            s = read_stream(
                client(gw).chat.completions.create(
                    model="openai/gpt-5-mini", messages=MSG, stream=True
                )
            )
            assert s.error is None and s.text == "back again"
            assert len(fakes.primary.requests) == 3
    finally:
        server.stop()


def test_worker_killed_mid_request_non_stream(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(text="too slow", ttft=30))
    worker = gw.workers[0]
    started = time.monotonic()

    def kill_when_upstream_called() -> None:
        assert fakes.primary.wait_for_requests(1, timeout=5)
        worker.kill()

    killer = threading.Thread(target=kill_when_upstream_called)
    killer.start()
    with pytest.raises(openai.APIStatusError) as info:
        client(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    killer.join()
    assert info.value.status_code == 504
    assert "stopped responding" in info.value.message
    assert time.monotonic() - started < HEARTBEAT_TIMEOUT + 1.5
    assert len(fakes.primary.requests) == 1


def test_worker_sigterm_finishes_the_running_stream(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(SLOW)
    stream, head = open_stream(gw)
    worker = gw.workers[0]
    worker.send_signal(signal.SIGTERM)
    got = read_stream(stream)
    assert got.error is None
    assert head + got.text == tokens(0, 40)
    assert got.finishes == ["stop"]
    assert exited(worker, 10)
    assert worker.returncode == 0


def test_api_sigterm_finishes_the_open_stream(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(SLOW)
    stream, head = open_stream(gw)
    api = gw.apis[0]
    api.send_signal(signal.SIGTERM)
    got = read_stream(stream)
    assert got.error is None
    assert head + got.text == tokens(0, 40)
    assert got.finishes == ["stop"]
    assert exited(api, 10)
