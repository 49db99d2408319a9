"""api.endpoint.relay_stream: frames that arrived together leave in one write, the last
write ends the body, and a broken reply still ends in-band after what was sent."""

from __future__ import annotations

from typing import Any

import pytest

from orbyt.api.endpoint import relay_stream
from orbyt.shared.contract import DELTA, DONE, Frame
from orbyt.shared.errors import OrbytError, ServiceUnavailable


class FakeExchange:
    """Frames in order; `arrived[i]` says whether frame i was already buffered when the
    relay asked (`ready()`)."""

    def __init__(self, frames: list[Frame | OrbytError], arrived: list[bool]) -> None:
        self.job = {"rid": "r1"}
        self._frames = frames
        self._arrived = arrived
        self._next = 1  # frame 0 is handed to relay_stream

    def ready(self) -> bool:
        return self._next < len(self._frames) and self._arrived[self._next]

    async def next(self) -> Frame:
        item = self._frames[self._next]
        self._next += 1
        if isinstance(item, OrbytError):
            raise item
        return item


class Dialect:
    def render(self, frame: Frame) -> bytes:
        return b"<%s%d>" % (frame.kind, frame.seq)

    def broken(self, err: OrbytError) -> bytes:
        return b"<broken>"


def delta(seq: int) -> Frame:
    return Frame(DELTA, seq, None, b"")


async def relay(frames: list[Frame | OrbytError], arrived: list[bool]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    first = frames[0]
    assert isinstance(first, Frame)
    await relay_stream(FakeExchange(frames, arrived), first, send, Dialect())  # type: ignore[arg-type]
    assert sent[0]["type"] == "http.response.start"
    return sent[1:]


def bodies(sent: list[dict[str, Any]]) -> list[tuple[bytes, bool]]:
    return [(m["body"], m["more_body"]) for m in sent]


async def test_frames_that_arrived_together_leave_in_one_write() -> None:
    frames: list[Frame | OrbytError] = [
        delta(1),
        delta(2),
        delta(3),
        delta(4),
        Frame(DONE, 5, {}, b""),
    ]
    sent = await relay(frames, [True, True, True, False, True])
    assert bodies(sent) == [(b"<D1><D2><D3>", True), (b"<D4><F5>", False)]


async def test_one_write_per_frame_when_each_comes_alone() -> None:
    frames: list[Frame | OrbytError] = [delta(1), delta(2), Frame(DONE, 3, {}, b"")]
    sent = await relay(frames, [True, False, False])
    assert bodies(sent) == [(b"<D1>", True), (b"<D2>", True), (b"<F3>", False)]


@pytest.mark.parametrize("arrived", [[True, True, True], [True, False, False]])
async def test_a_broken_reply_ends_in_band_after_everything_received(arrived: list[bool]) -> None:
    frames: list[Frame | OrbytError] = [delta(1), delta(2), ServiceUnavailable("gone")]
    sent = await relay(frames, arrived)
    assert b"".join(m["body"] for m in sent) == b"<D1><D2><broken>"
    assert sent[-1]["more_body"] is False
    assert all(m["more_body"] for m in sent[:-1])
