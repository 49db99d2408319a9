"""Batches under faults: injected upstream failures, rate limits, a worker SIGKILLed and the
API restarted mid-batch, the input file deleted, the owner's key revoked, expiry, usage."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import openai
import pytest
from redis.asyncio import Redis

from orbyt.api.keystore import KeyStore
from orbyt.shared.usage import read
from tests.gateway import Gateway, RedisServer
from tests.integration.batch.conftest import assert_no_errors, gateway_env
from tests.integration.batch.support import MarkerOpenAI, client, line, results, submit, wait

pytestmark = pytest.mark.integration


@pytest.fixture
def gw(redis_server: RedisServer, fake: MarkerOpenAI) -> Iterator[Gateway]:
    env = gateway_env(fake, ORBYT_BATCH_CONCURRENCY="16")
    with Gateway(redis_server.new_db_url(), env, workers=1) as g:
        yield g
        assert_no_errors(g)


def _every_id_once(c: openai.OpenAI, batch: object, expected: list[str]) -> tuple[list, list]:
    out, err = results(c, batch)
    ids = Counter(x["custom_id"] for x in out + err)
    assert sorted(ids) == sorted(expected)
    assert set(ids.values()) == {1}, [k for k, v in ids.items() if v > 1]
    return out, err


def test_faults_account_for_every_line(gw: Gateway) -> None:
    c = client(gw.base_url)
    fallback = {"fallback_models": ["openai/gpt-5-nano"], "retry": 0}
    lines = []
    for i in range(300):
        kind = i % 10
        if kind == 0:
            lines.append(line(f"r{i}", f"DOWN {i}", extra=fallback))
        elif kind == 1:
            lines.append(line(f"r{i}", f"FAIL {i}"))
        elif kind == 2 and i < 60:
            lines.append(line(f"r{i}", f"LIMIT4 {i}", extra={"retry": 1}))
        else:
            lines.append(line(f"r{i}", f"ok {i}"))
    done = wait(c, submit(c, lines).id, timeout=90)
    assert done.status == "completed"
    out, err = _every_id_once(c, done, [f"r{i}" for i in range(300)])
    by_id = {x["custom_id"]: x for x in out + err}
    for i in range(300):
        resp = by_id[f"r{i}"]["response"]
        if i % 10 == 1:
            assert resp["status_code"] == 400
        else:
            assert resp["status_code"] == 200, resp
        if i % 10 == 0:  # failed over; the line says so, like x-orbyt-* headers would
            assert resp["body"]["model"] == "openai/gpt-5-nano"
            assert resp["orbyt"]["model"] == "openai/gpt-5-nano"
            # 2, or 1 once the primary's breaker has opened (consecutive failures of
            # concurrent DOWN lines) and the walk skips it for the fallback
            assert resp["orbyt"]["attempts"] in (1, 2)
        elif i % 10 != 2 or i >= 60:
            assert resp["orbyt"]["attempts"] == 1
        assert resp["orbyt"]["provider"] == "openai" and resp["orbyt"]["key_source"] == "pool"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (270, 30)
    usage = asyncio.run(_usage(gw, _env_key_id()))
    batch_requests = sum(m.get("batch_requests", 0) for m in usage.values())
    assert batch_requests >= 300  # every line billed (this db may hold other tests' lines)


async def _usage(gw: Gateway, key_id: str) -> dict[str, dict[str, int]]:
    r = Redis.from_url(gw.redis_url)
    try:
        return await read(r, key_id, datetime.now(UTC).strftime("%Y-%m-%d"))
    finally:
        await r.aclose()


def _env_key_id() -> str:
    import hashlib

    from orbyt.api.auth import hash_key
    from tests.gateway import GATEWAY_KEY

    return "env_" + hashlib.sha256(hash_key(GATEWAY_KEY).encode()).hexdigest()[:12]


def test_worker_killed_and_api_restarted_mid_batch(gw: Gateway) -> None:
    c = client(gw.base_url)
    n = 150
    batch = submit(c, [line(f"k{i}", f"SLOW {i}") for i in range(n)])
    _wait_progress(c, batch.id, 20)
    killed = gw.workers.pop(0)
    killed.send_signal(signal.SIGKILL)
    killed.wait(5)
    api = gw.apis[0]
    api.terminate()
    api.wait(10)
    gw.apis.clear()
    gw.apis.append(
        gw._spawn(["api", "--host", "127.0.0.1", "--port", str(gw.ports[0])], "api0-again")
    )
    gw.start_worker()
    gw.wait_ready(0)
    done = wait(c, batch.id, timeout=90)
    assert done.status == "completed"
    out, err = _every_id_once(c, done, [f"k{i}" for i in range(n)])
    assert not err and len(out) == n


def _wait_progress(c: openai.OpenAI, batch_id: str, lines: int) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        counts = c.batches.retrieve(batch_id).request_counts
        if counts is not None and counts.completed >= lines:
            return
        time.sleep(0.05)
    raise AssertionError("no progress")


def test_input_deleted_while_running(gw: Gateway) -> None:
    c = client(gw.base_url)
    batch = submit(c, [line(f"d{i}", f"SLOW {i}") for i in range(40)])
    c.files.delete(batch.input_file_id)
    done = wait(c, batch.id)
    assert done.status == "completed"  # the batch runs on its own copy of the input
    _every_id_once(c, done, [f"d{i}" for i in range(40)])


def test_revoked_key_cancels_its_batches(gw: Gateway) -> None:
    async def make() -> tuple[str, str]:
        r = Redis.from_url(gw.redis_url)
        key, rec = await KeyStore(r).create("short-lived")
        await r.aclose()
        return key, rec.id

    key, key_id = asyncio.run(make())
    c = client(gw.base_url, key)
    batch = submit(c, [line(f"v{i}", f"SLOW {i}") for i in range(200)])
    _wait_progress(c, batch.id, 5)

    async def revoke() -> None:
        r = Redis.from_url(gw.redis_url)
        await KeyStore(r).revoke(key_id)
        await r.aclose()

    asyncio.run(revoke())
    with pytest.raises(openai.AuthenticationError):
        c.batches.retrieve(batch.id)
    # the batch stops (cancelled); read its final state straight from Redis
    end = time.monotonic() + 30
    while time.monotonic() < end:
        status = asyncio.run(_status(gw, batch.id))
        if status == "cancelled":
            break
        time.sleep(0.1)
    assert status == "cancelled"


async def _status(gw: Gateway, batch_id: str) -> str:
    r = Redis.from_url(gw.redis_url)
    try:
        return (await r.hget(f"orbyt:batch:{batch_id}", "status") or b"").decode()
    finally:
        await r.aclose()


def test_expiry_keeps_partial_results(redis_server: RedisServer, fake: MarkerOpenAI) -> None:
    env = gateway_env(fake, ORBYT_BATCH_WINDOW_SCALE=str(2.0 / 86400), ORBYT_BATCH_CONCURRENCY="4")
    with Gateway(redis_server.new_db_url(), env, workers=1) as g:
        c = client(g.base_url)
        n = 60
        done = wait(c, submit(c, [line(f"e{i}", f"SLOW {i}") for i in range(n)]).id)
        assert done.status == "expired" and done.expired_at
        out, err = _every_id_once(c, done, [f"e{i}" for i in range(n)])
        assert out and err
        for x in err:  # never started, or cut by the window (a line's deadline is the window)
            assert x["response"] is None and x["error"]["code"] == "batch_expired", x


def test_interactive_requests_stay_prompt_during_a_batch(gw: Gateway) -> None:
    c = client(gw.base_url)
    batch = submit(c, [line(f"i{i}", f"SLOW {i}") for i in range(400)])
    _wait_progress(c, batch.id, 16)
    took = []
    for _ in range(20):
        started = time.monotonic()
        resp = c.chat.completions.create(
            model="openai/gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
        )
        took.append(time.monotonic() - started)
        assert resp.choices[0].message.content
    assert c.batches.retrieve(batch.id).status == "in_progress"  # measured during the batch
    took.sort()
    assert took[len(took) // 2] < 0.25, took
    assert took[-1] < 1.5, took
    c.batches.cancel(batch.id)
    wait(c, batch.id)
