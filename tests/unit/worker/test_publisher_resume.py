"""The publisher's replay buffer and outage handling, in process (no Redis): a fake link
whose connection can be up or down, and `publish` recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from orbyt.shared.contract import DELTA, DONE, ERROR, HEARTBEAT, START, decode_frame
from orbyt.worker import publisher as mod
from orbyt.worker.publisher import Publisher, RedisLost, Replays, ReplyGone

CHANNEL = "orbyt:reply:r1"
META: Any = {"model": "m", "provider": "p", "attempts": 1, "key_source": "pool"}


class FakeConn:
    closed = False
    backlogged = False


class FakeLink:
    def __init__(self) -> None:
        self.conn = FakeConn()
        self.up = True
        self.lost_at = -1e18
        self.replays: Replays | None = None
        self.receivers = 1
        self.sent: list[bytes] = []
        self.reconnects = 0

    def current(self) -> FakeConn | None:
        return self.conn if self.up else None

    async def connection(self) -> FakeConn:
        if not self.up:
            raise ConnectionError("down")
        return self.conn

    def reconnect_soon(self) -> None:
        self.reconnects += 1

    def down(self) -> None:
        self.up = False
        self.lost_at = asyncio.get_running_loop().time()

    def seqs(self) -> list[int]:
        return [decode_frame(f).seq for f in self.sent]


@pytest.fixture
def link(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLink]:
    fake = FakeLink()

    def publish(conn: Any, channel: bytes, frame: bytes, urgent: bool = True) -> Any:
        fut = asyncio.get_running_loop().create_future()
        if conn.closed:
            fut.set_exception(ConnectionError("lost"))
        else:
            fake.sent.append(frame)
            fut.set_result([fake.receivers])
        return fut

    def publish_checked(conn: Any, channel: bytes, frame: bytes, check: Any) -> None:
        reply: Any = ConnectionError("lost") if conn.closed else fake.receivers
        if not conn.closed:
            fake.sent.append(frame)
        asyncio.get_running_loop().call_soon(check, reply)  # the reply comes later

    monkeypatch.setattr(mod, "publish", publish)
    monkeypatch.setattr(mod, "publish_checked", publish_checked)
    yield fake


def make(link: FakeLink, cap: int = 1 << 20, window: float = 10.0) -> tuple[Publisher, list[int]]:
    link.replays = Replays(link, window, cap, linger=0.05)  # type: ignore[arg-type]
    cancels: list[int] = []
    pub = Publisher(link, CHANNEL, 60, lambda: cancels.append(1))  # type: ignore[arg-type]
    return pub, cancels


async def test_the_buffer_keeps_the_newest_frames_within_its_cap(link: FakeLink) -> None:
    pub, _ = make(link, cap=100)
    await pub.start({"worker": "w"})
    await pub.delta(b"x" * 30, META)
    for _ in range(10):
        await pub.delta(b"y" * 30)
    assert pub._size <= 100 and pub._first > 0
    assert [decode_frame(f).seq for f in pub._frames] == list(range(pub._first, 12))
    await pub.delta(b"z" * 500)  # one frame over the cap: the newest is always kept
    assert pub.buffered == 1 and decode_frame(pub._frames[0]).payload == b"z" * 500
    await pub.close()


async def test_an_outage_is_ridden_out_and_the_frames_replayed_in_order(link: FakeLink) -> None:
    pub, cancels = make(link)
    await pub.start({"worker": "w"})
    await pub.delta(b"a", META)
    await pub.delta(b"b")
    link.down()
    await pub.delta(b"c")  # no raise: numbered and buffered, reconnect in the background
    await pub.delta(b"d")
    await pub.done(META, b"")  # the job ends; its frames wait for the API
    assert link.reconnects > 0 and not cancels and not pub.gone
    assert link.seqs() == [0, 1, 2]
    link.up = True
    assert link.replays is not None
    link.replays.resume(f"2|{CHANNEL}")  # the API saw 0..1
    await asyncio.sleep(0)
    await asyncio.gather(*link.replays.tasks)
    assert link.seqs()[3:] == [2, 3, 4, 5]
    kinds = [decode_frame(f).kind for f in link.sent[3:]]
    assert kinds == [DELTA, DELTA, DELTA, DONE]
    assert pub._first == 2  # frames before the asked one are acknowledged


async def test_a_replay_from_before_the_buffer_is_a_clear_error(link: FakeLink) -> None:
    pub, cancels = make(link, cap=60)
    await pub.start({"worker": "w"})
    for i in range(6):
        await pub.delta(b"t%d" % i, META if i == 0 else None)
    await pub.replay(1)
    frame = decode_frame(link.sent[-1])
    assert (frame.kind, frame.seq) == (ERROR, 1)
    assert frame.meta is not None and frame.meta["status"] == 503
    assert orjson.loads(frame.payload)["error"]["code"] == "reply_lost"
    assert cancels  # the job stops
    await pub.close()


async def test_nobody_listening_is_caller_gone_only_outside_the_window(link: FakeLink) -> None:
    pub, _ = make(link)
    await pub.start({"worker": "w"})
    link.receivers = 0
    with pytest.raises(ReplyGone):
        await pub.delta(b"a", META)
    pub2, cancels = make(link)
    link.lost_at = asyncio.get_running_loop().time()  # an outage began just now
    await pub2.start({"worker": "w"})
    await pub2.delta(b"a", META)  # the API has not re-subscribed yet: not gone
    await pub2.delta(b"b")
    await asyncio.sleep(0)
    assert not pub2.gone and not cancels
    await pub.close()
    await pub2.close()


async def test_past_the_window_a_lost_redis_ends_the_job(link: FakeLink) -> None:
    pub, _ = make(link, window=0.05)
    await pub.start({"worker": "w"})
    link.down()
    await pub.delta(b"a", META)  # within the window: buffered
    await asyncio.sleep(0.06)
    with pytest.raises(RedisLost):
        await pub.delta(b"b")
    await pub.close()


async def test_heartbeats_are_numbered_frames_and_pause_while_redis_is_away(
    link: FakeLink,
) -> None:
    link.replays = Replays(link, 10.0, 1 << 20)  # type: ignore[arg-type]
    pub = Publisher(link, CHANNEL, 0.02, lambda: None)  # type: ignore[arg-type]
    await pub.start({"worker": "w"})
    await asyncio.sleep(0.07)
    assert decode_frame(link.sent[0]).kind == START
    assert {decode_frame(f).kind for f in link.sent[1:]} == {HEARTBEAT}
    link.down()
    before = pub._seq
    await asyncio.sleep(0.07)
    assert pub._seq == before  # no heartbeat frames pile up during the outage
    await pub.close()


async def test_finished_replies_linger_then_go_unless_an_outage_holds_them(
    link: FakeLink,
) -> None:
    pub, _ = make(link)
    replays = link.replays
    assert replays is not None
    await pub.start({"worker": "w"})
    await pub.done(META)
    assert replays.find(pub.channel) is pub
    await asyncio.sleep(0.06)  # past the linger, no outage
    assert replays.find(pub.channel) is None
    held = Publisher(link, "orbyt:reply:r2", 60, lambda: None)  # type: ignore[arg-type]
    await held.start({"worker": "w"})
    await held.done(META)
    link.lost_at = asyncio.get_running_loop().time()  # lost right after it ended
    await asyncio.sleep(0.06)
    assert replays.find(held.channel) is held  # kept for the window
