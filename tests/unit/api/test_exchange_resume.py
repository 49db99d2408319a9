"""How an exchange reads reply frames across a Redis outage, in process: a scripted
subscription, resume requests recorded (no Redis)."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orbyt.api import exchange as mod
from orbyt.api.exchange import Exchange
from orbyt.shared.contract import DELTA, DONE, HEARTBEAT, START, encode_frame
from orbyt.shared.errors import OrbytError
from orbyt.shared.redis.hub import SubscriptionResumed

CHANNEL = "orbyt:reply:r1"


class ScriptedSub:
    """Gives the scripted items (frame bytes or exceptions) in order, then times out."""

    def __init__(self, *items: bytes | Exception) -> None:
        self.items: deque[bytes | Exception] = deque(items)
        self.resuming = False
        self.lost_at = 0.0
        self.waits: list[float] = []

    async def next(self, timeout: float) -> bytes:
        self.waits.append(timeout)
        await asyncio.sleep(0)
        if not self.items:
            await asyncio.sleep(min(timeout, 0.01))
            raise TimeoutError
        item = self.items.popleft()
        if isinstance(item, Exception):
            raise item
        return item

    def add(self, *items: bytes | Exception) -> None:
        self.items.extend(items)


def frame(kind: bytes, seq: int, payload: bytes = b"") -> bytes:
    return encode_frame(kind, seq, None, payload)


def exchange(sub: ScriptedSub, asks: list[bytes], window: float = 10.0) -> Exchange:
    conn = object()
    fast = SimpleNamespace(current=lambda: conn, reconnect_soon=lambda: None)
    settings = SimpleNamespace(heartbeat_timeout=5.0, reply_resume_s=window)
    st: Any = SimpleNamespace(settings=settings, fast=fast)
    job: Any = {"rid": "r1", "channel": CHANNEL, "stream": True}
    ex = Exchange(st, job, None, None, None)  # type: ignore[arg-type]
    ex._sub = sub  # type: ignore[assignment]
    return ex


@pytest.fixture
def asks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    sent: list[bytes] = []

    def publish(conn: Any, channel: bytes, message: bytes, urgent: bool = True) -> Any:
        assert channel == b"orbyt:resume"
        sent.append(message)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result([1])
        return fut

    monkeypatch.setattr(mod, "publish", publish)
    monkeypatch.setattr(mod, "RESUME_ASK_EVERY", 0.0)
    return sent


async def test_duplicates_are_dropped(asks: list[bytes]) -> None:
    sub = ScriptedSub(frame(START, 0), frame(DELTA, 1, b"a"), frame(DELTA, 1, b"a"))
    sub.add(frame(START, 0), frame(HEARTBEAT, 2), frame(DELTA, 3, b"b"))
    ex = exchange(sub, asks)
    got = [await ex._frame(None) for _ in range(3)]
    assert [(f.kind, f.seq, f.payload) for f in got] == [
        (START, 0, b""),
        (DELTA, 1, b"a"),
        (DELTA, 3, b"b"),
    ]
    assert asks == []


def resumes(outcome: str) -> float:
    return REGISTRY.get_sample_value("orbyt_reply_resumes_total", {"outcome": outcome}) or 0.0


async def test_a_gap_asks_for_a_replay_and_holds_later_frames(asks: list[bytes]) -> None:
    before = resumes("resumed")
    sub = ScriptedSub(frame(START, 0), frame(DELTA, 3, b"d"), frame(DELTA, 4, b"e"))
    ex = exchange(sub, asks)
    assert (await ex._frame(None)).seq == 0
    reader = asyncio.create_task(ex._frame(None))
    await asyncio.sleep(0.02)
    assert asks and asks[0] == f"1|{CHANNEL}".encode()  # from the API's own count
    assert not reader.done()
    sub.add(frame(DELTA, 1, b"b"), frame(DELTA, 2, b"c"), frame(DELTA, 3, b"d"))
    sub.add(frame(DELTA, 4, b"e"), frame(DONE, 5))
    assert (await reader).payload == b"b"
    rest = [await ex._frame(None) for _ in range(4)]
    assert [f.seq for f in rest] == [2, 3, 4, 5]
    assert ex._resume_by is None
    assert resumes("resumed") == before + 1


async def test_a_resumed_subscription_asks_from_the_next_expected_frame(
    asks: list[bytes],
) -> None:
    sub = ScriptedSub(frame(START, 0), frame(DELTA, 1, b"a"))
    ex = exchange(sub, asks)
    await ex._frame(None)
    await ex._frame(None)
    sub.lost_at = asyncio.get_running_loop().time()
    sub.add(SubscriptionResumed(CHANNEL))
    reader = asyncio.create_task(ex._frame(None))
    await asyncio.sleep(0.02)
    assert asks[0] == f"2|{CHANNEL}".encode()
    sub.add(frame(DELTA, 1, b"a"), frame(DELTA, 2, b"b"))  # the replay
    assert (await reader).payload == b"b"


async def test_a_gap_nobody_fills_ends_with_reply_lost(asks: list[bytes]) -> None:
    sub = ScriptedSub(frame(START, 0), frame(DELTA, 2, b"c"))
    ex = exchange(sub, asks, window=0.1)
    await ex._frame(None)
    before = resumes("lost")
    with pytest.raises(OrbytError) as err:
        await ex._frame(None)
    assert err.value.code == "reply_lost" and "could not resume" in err.value.message
    assert resumes("lost") == before + 1
    assert len(asks) > 1  # asked again while it waited


async def test_while_the_hub_reconnects_the_heartbeat_timeout_does_not_apply(
    asks: list[bytes],
) -> None:
    sub = ScriptedSub(frame(START, 0))
    ex = exchange(sub, asks, window=0.15)
    await ex._frame(None)
    sub.resuming = True
    sub.lost_at = asyncio.get_running_loop().time()
    started = asyncio.get_running_loop().time()
    with pytest.raises(OrbytError) as err:  # no frames at all: reply_lost at the window
        await ex._frame(0.01)
    assert err.value.code == "reply_lost"
    assert asyncio.get_running_loop().time() - started >= 0.14
    assert asks == []  # nothing to ask before the hub is back


async def test_a_job_not_started_before_the_outage_gets_the_pickup_time(
    asks: list[bytes],
) -> None:
    sub = ScriptedSub(SubscriptionResumed(CHANNEL))
    sub.lost_at = asyncio.get_running_loop().time()
    ex = exchange(sub, asks)
    with pytest.raises(TimeoutError):  # the pickup's own timeout, from the re-subscription
        await ex._frame(0.1)
    assert asks and asks[0] == f"0|{CHANNEL}".encode()
    assert ex._resumed


def test_ready_only_for_the_next_content_frame_in_order() -> None:
    """`ready()` lets the stream relay batch writes: it must never promise a frame that
    `next()` would skip (a heartbeat, a duplicate) and then wait past."""
    sub: Any = SimpleNamespace(frames=deque())
    ex = exchange(ScriptedSub(), [])
    ex._sub = sub
    ex._seq = 7
    assert not ex.ready()  # nothing buffered
    for head, ready in [
        (frame(DELTA, 7), True),
        (frame(DONE, 7), True),
        (frame(HEARTBEAT, 7), False),
        (frame(DELTA, 6), False),  # a duplicate: skipped
        (frame(DELTA, 8), False),  # past a gap: asked for again
        (frame(DELTA, 70), False),
    ]:
        sub.frames = deque([head, frame(DELTA, 8)])
        assert ex.ready() is ready, head
