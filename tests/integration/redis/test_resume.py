"""In-flight replies survive a short Redis outage (issue 11, "Beyond the peers"): real
redis-servers, real API and worker processes, the queue Redis killed under load.

- an outage of a few seconds under 200 concurrent streams (and non-stream requests):
  at least 99 % of them complete intact (every token, in order, no duplicate), the rest
  end with a clear error; the fake upstream saw each request exactly once; no process
  logged an error;
- an outage longer than the resume window: every request in flight ends with a clear
  error within the window plus a few seconds, none hangs; new requests succeed once Redis
  is back;
- frames no longer in the worker's replay buffer: a clear error, never a gap;
- jobs still queued when a non-persistent queue Redis restarts: a clear 503 `queue_lost`,
  nothing ran.

Load: streams of 60 tokens at 50 ms (three seconds each), so the outage lands mid-stream
for all of them (and some answers end while Redis is away: their last frames wait in the
worker's replay buffer)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from tests.fakes import Reply
from tests.gateway import Gateway, RedisServer
from tests.integration.faults_support import Fakes, running_fakes, tokens
from tests.integration.redis.load import Outcome, judge, log_errors, run_streams

pytestmark = pytest.mark.integration

STREAMS = 200
WHOLE = 20  # non-stream requests in flight too
ANSWER = tokens(0, 60)
LIVENESS = {"ORBYT_REDIS_PING_INTERVAL": "0.5", "ORBYT_REDIS_DEAD_AFTER": "1.0"}


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


def outage(
    server: RedisServer, after: float, down: float, when: Callable[[], bool] = lambda: True
) -> threading.Thread:
    """Kill `server` (SIGKILL) `after` seconds once `when()` holds (every request in flight),
    start it again `down` later on the same port (empty: the queue role runs without
    persistence). The thread's `killed_at` is the monotonic time of the kill."""

    def run() -> None:
        end = time.monotonic() + 20
        while not when() and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(after)
        server.kill()
        thread.killed_at = time.monotonic()  # type: ignore[attr-defined]
        time.sleep(down)
        server.start()

    thread = threading.Thread(target=run, daemon=True)
    thread.killed_at = 0.0  # type: ignore[attr-defined]
    thread.start()
    return thread


async def load(gw: Gateway, prefix: str, deadline: float) -> tuple[list[Outcome], list[Outcome]]:
    tags = [f"{prefix}-{i}" for i in range(STREAMS)]
    whole = [f"{prefix}-whole-{i}" for i in range(WHOLE)]
    streams, wholes = await asyncio.gather(
        run_streams(gw.url(), tags, deadline, stagger=0.002),
        run_streams(gw.url(), whole, deadline, stream=False),
    )
    return streams, wholes


def upstream_calls(fakes: Fakes, prefix: str) -> Counter[str]:
    return Counter(
        content
        for r in fakes.primary.requests
        if r.json and (content := r.json["messages"][0]["content"]).startswith(prefix + "-")
    )


def gateway(
    fakes: Fakes, state: RedisServer, queue: RedisServer, workers: int = 1, **env: str
) -> Gateway:
    env = {**fakes.env(), **LIVENESS, "ORBYT_QUEUE_REDIS_URL": queue.url(1), **env}
    return Gateway(state.url(1), env, workers=workers)


@pytest.mark.parametrize("down", [2.5, 5.0])
def test_streams_survive_a_queue_redis_restart(fakes: Fakes, down: float) -> None:
    fakes.reset()
    fakes.primary.default = Reply(tokens=60, per_token=0.05)
    state = RedisServer().start()
    queue = RedisServer().start()
    try:
        with gateway(fakes, state, queue) as gw:
            started = time.monotonic()
            every = STREAMS + WHOLE  # the kill lands once the upstream saw every request
            killer = outage(queue, 0.3, down, lambda: len(fakes.primary.requests) >= every)
            streams, wholes = asyncio.run(load(gw, "restart", deadline=30))
            killer.join()
            took = time.monotonic() - started
            counts = judge(streams, ANSWER)
            whole = judge(wholes, ANSWER)
            errors = Counter(o.error for o in streams + wholes if o.error)
            print(
                f"restart {down} s: streams {counts}, non-stream {whole}, errors {dict(errors)}, "
                f"{took:.1f} s"
            )
            assert "reply pub/sub resumed" in gw.all_logs()  # the outage did hit them
            assert counts["ok"] >= 0.99 * STREAMS, errors
            assert whole["ok"] >= 0.95 * WHOLE, errors
            calls = upstream_calls(fakes, "restart")
            assert max(calls.values()) == 1, calls.most_common(3)  # no job ran twice
            assert len(calls) >= counts["ok"] + whole["ok"]
            after = asyncio.run(run_streams(gw.url(), [f"after-{i}" for i in range(10)], 20))
            assert judge(after, ANSWER) == {"ok": 10, "error": 0}
            bad = log_errors(gw.all_logs())
            assert not bad, bad[:3]
    finally:
        state.stop()
        queue.stop()


def test_an_outage_longer_than_the_window_ends_every_request_clearly(fakes: Fakes) -> None:
    fakes.reset()
    fakes.primary.default = Reply(tokens=60, per_token=0.05)
    state = RedisServer().start()
    queue = RedisServer().start()
    window, down, kill_at = 2.0, 5.0, 0.3
    try:
        with gateway(fakes, state, queue, ORBYT_REPLY_RESUME_S=str(window)) as gw:
            killer = outage(queue, kill_at, down, lambda: len(fakes.primary.requests) >= 50)
            tags = [f"long-{i}" for i in range(50)]
            started = time.monotonic()
            streams = asyncio.run(run_streams(gw.url(), tags, deadline=20))
            killer.join()
            counts = judge(streams, ANSWER)
            assert counts["error"] == 50, counts
            assert {o.status for o in streams} == {200}  # in-band, after the first token
            assert all("could not resume" in (o.error or "") for o in streams), streams[:2]
            # each ended within the window (plus a little slack) of the kill
            ends = [started + o.seconds - killer.killed_at for o in streams]  # type: ignore[attr-defined]
            assert max(ends) < window + 3.0, max(ends)
            # Redis back: new requests succeed
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                after = asyncio.run(run_streams(gw.url(), ["after-long"], 20))
                if after[0].complete:
                    break
                time.sleep(0.2)
            assert after[0].complete and after[0].text == ANSWER, after
            calls = upstream_calls(fakes, "long")
            assert max(calls.values()) == 1, calls.most_common(3)
            bad = log_errors(gw.all_logs())
            assert not bad, bad[:3]
    finally:
        state.stop()
        queue.stop()


def test_frames_no_longer_buffered_end_the_stream_with_a_clear_error(fakes: Fakes) -> None:
    fakes.reset()
    fakes.primary.default = Reply(tokens=60, per_token=0.05)
    state = RedisServer().start()
    queue = RedisServer().start()
    try:  # a buffer of a few frames: what the outage swallowed cannot be replayed
        with gateway(fakes, state, queue, ORBYT_REPLY_REPLAY_BYTES="300") as gw:
            killer = outage(queue, 0.3, 1.5, lambda: len(fakes.primary.requests) >= 20)
            streams = asyncio.run(run_streams(gw.url(), [f"cap-{i}" for i in range(20)], 20))
            killer.join()
            assert judge(streams, ANSWER) == {"ok": 0, "error": 20}  # never a gap
            assert all("resume" in (o.error or "") for o in streams), streams[:2]
            bad = log_errors(gw.all_logs())
            assert not bad, bad[:3]
    finally:
        state.stop()
        queue.stop()


def test_a_job_still_queued_when_the_queue_redis_restarts_ends_with_a_clear_503(
    fakes: Fakes,
) -> None:
    fakes.reset()
    state = RedisServer().start()
    queue = RedisServer().start()
    try:  # no worker yet: the jobs wait in the queue, which the restart empties
        with gateway(fakes, state, queue, workers=0) as gw:
            killer = outage(queue, 0.5, 1.0)
            wholes = asyncio.run(
                run_streams(gw.url(), [f"queued-{i}" for i in range(5)], 20, stream=False)
            )
            killer.join()
            assert {o.status for o in wholes} == {503}, wholes
            assert all("no worker had started it" in (o.error or "") for o in wholes), wholes
            assert not fakes.primary.requests  # none ran
            gw.start_worker()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                after = asyncio.run(run_streams(gw.url(), ["queued-after"], 20))
                if after[0].complete:
                    break
                time.sleep(0.2)
            assert after[0].complete, after
            bad = log_errors(gw.all_logs())
            assert not bad, bad[:3]
    finally:
        state.stop()
        queue.stop()
