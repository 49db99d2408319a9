"""Publishing reply frames for one job, with gap-free `seq`, heartbeats, cancel detection,
and replay after a Redis outage.

Frames go out on the worker's pipelined publisher connection: the frame is numbered and
written synchronously (so order and `seq` agree without a lock), then its reply is awaited
or checked by callback. A PUBLISH that reaches no subscriber means the API side is gone
(client disconnected, API crashed or gave up on pickup): the job is cancelled through the
`cancel` callback it was given (`Jobs.cancel`, the worker's one cancellation path), or,
when the frame's reply is awaited in the job itself, by `ReplyGone`.

Resuming (on when the connection carries a `Replays`, which the worker sets up): every
frame is also kept in a per-job buffer of at most `Replays.cap` bytes (oldest frames
dropped first; the newest frame is always kept), and frames below a sequence the API asked
for are dropped as acknowledged. A lost Redis connection no longer ends the job: frames go
on being numbered and buffered while the connection is re-established in the background,
and a PUBLISH that reaches no subscriber is not "caller gone" while the outage's grace
window (`Replays.window`, from `link.lost_at`) runs. The API, once re-subscribed, asks on
the resume channel for the frames from the next sequence it expects; `Replays.resume`
re-publishes them (or, if the oldest of them is no longer buffered, a clear `reply_lost`
error frame at that sequence, and the job is cancelled). A finished job's frames stay
`Replays.linger` seconds (enough for the connection to notice a loss), and until the
window ends if an outage began meanwhile. Past the window with Redis still away, the job
ends as before (`RedisLost`).

Memory per request: at most `cap` bytes plus one frame while it runs, and for the
`linger`/window after it ends.

About 350 lines: replay shares the numbering and the buffer it replays from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import islice
from typing import Any

import orjson

from orbyt.shared.contract import (
    DELTA,
    DONE,
    ERROR,
    HEARTBEAT,
    START,
    ErrorMeta,
    FrameMeta,
    RouteMeta,
    StartMeta,
    encode_frame,
)
from orbyt.shared.redis.fast import PipelinedConnection, publish, publish_checked
from orbyt.shared.redis.link import Conn

log = logging.getLogger("orbyt.worker")


class ReplyGone(Exception):
    """Nobody listens on the reply channel any more."""


class RedisLost(ReplyGone):
    """The connection to Redis failed (for longer than the resume window, if resuming is
    on): no frame can reach the caller (whose API side has lost its subscription too and
    answers with a clear error), so the job ends like one whose caller went away. An
    expected event (a Redis restart or failover), not a bug."""


def _unrecoverable(seq: int) -> bytes:
    body = {
        "error": {
            "message": "The reply stream broke: the gateway lost Redis for too long to "
            "resume this answer.",
            "type": "service_unavailable",
            "param": None,
            "code": "reply_lost",
        }
    }
    return encode_frame(
        ERROR, seq, ErrorMeta(status=503, headers={}, attempts=0), orjson.dumps(body)
    )


class Replays:
    """The resumable replies of one worker process (see the module docstring): running
    jobs' publishers by channel, and finished ones kept a while in the order they ended."""

    def __init__(
        self, link: PipelinedConnection, window: float, cap: int, linger: float = 5.0
    ) -> None:
        self.link = link
        self.window = window
        self.cap = cap
        self.linger = linger
        self.running: dict[bytes, Publisher] = {}
        self.finished: OrderedDict[bytes, tuple[float, Publisher]] = OrderedDict()
        self.tasks: set[asyncio.Task[None]] = set()

    def in_grace(self) -> bool:
        """Whether the latest outage began less than `window` seconds ago."""
        return asyncio.get_running_loop().time() - self.link.lost_at < self.window

    def finish(self, pub: Publisher) -> None:
        now = asyncio.get_running_loop().time()
        if self.running.get(pub.channel) is pub:
            del self.running[pub.channel]
        self.sweep(now)
        if pub.buffered:
            self.finished[pub.channel] = (now, pub)
            self.finished.move_to_end(pub.channel)

    def sweep(self, now: float) -> None:
        """Drop finished replies past their linger, unless an outage began before it ended
        and its window still runs (oldest first: whether one is kept grows with its end)."""
        lost = self.link.lost_at
        finished = self.finished
        while finished:
            ended, _ = next(iter(finished.values()))
            end = ended + self.linger
            if now < end or (lost < end and now < lost + self.window):
                return
            finished.popitem(last=False)

    def find(self, channel: bytes) -> Publisher | None:
        pub = self.running.get(channel)
        if pub is not None:
            return pub
        self.sweep(asyncio.get_running_loop().time())
        kept = self.finished.get(channel)
        return kept[1] if kept is not None else None

    def resume(self, message: str) -> None:
        """A resume request `<seq>|<channel>` from the API (the resume channel): replay if
        this worker holds that reply (every worker hears every request)."""
        head, _, channel = message.partition("|")
        try:
            seq = int(head)
        except ValueError:
            return
        pub = self.find(channel.encode())
        if pub is not None:
            task = asyncio.get_running_loop().create_task(pub.replay(seq))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


class Publisher:
    def __init__(
        self,
        conn: PipelinedConnection,
        channel: str,
        heartbeat_interval: float,
        cancel: Callable[[], None],
    ) -> None:
        self._conn = conn
        self.channel = self._channel = channel.encode()
        self._seq = 0
        self._interval = heartbeat_interval
        self._last = 0.0
        self._cancel = cancel
        self._beat: asyncio.Task[None] | None = None
        self.closed = False
        self.gone = False
        replays: Replays | None = conn.replays
        self._replays = replays
        self._frames: deque[bytes] = deque()  # the replay buffer (resuming on)
        self._first = 0  # seq of _frames[0]
        self._size = 0
        self._cap = replays.cap if replays is not None else 0
        if replays is not None:
            replays.running[self._channel] = self

    @property
    def buffered(self) -> int:
        return len(self._frames)

    def _in_grace(self) -> bool:
        return self._replays is not None and self._replays.in_grace()

    async def _connection(self) -> Conn | None:
        """The live connection; None while an outage is ridden out (the frame is buffered,
        the connection re-established in the background); RedisLost otherwise."""
        if self._in_grace():
            self._conn.reconnect_soon()
            return None
        try:
            return await self._conn.connection()
        except ConnectionError as exc:
            if self._in_grace():
                return None
            self.gone = True
            raise RedisLost(self._channel.decode()) from exc

    def _next(self, kind: bytes, meta: FrameMeta | None, payload: bytes) -> bytes:
        """The next frame, numbered (and buffered); the caller writes it before its next
        await."""
        frame = encode_frame(kind, self._seq, meta, payload)
        self._seq += 1
        self._last = asyncio.get_running_loop().time()
        if self._cap:
            frames = self._frames
            frames.append(frame)
            self._size += len(frame)
            while self._size > self._cap and len(frames) > 1:
                self._size -= len(frames.popleft())
                self._first += 1
        return frame

    async def _send(
        self, kind: bytes, meta: FrameMeta | None, payload: bytes, urgent: bool = True
    ) -> None:
        conn = self._conn.current() or await self._connection()
        if self.closed:
            return
        # numbering and writing happen with no await in between: frames leave in seq order
        frame = self._next(kind, meta, payload)
        if conn is None:
            return  # buffered: replayed when the API asks
        try:
            (receivers,) = await publish(conn, self._channel, frame, urgent)
        except ConnectionError as exc:
            if self._in_grace():
                return
            self.gone = True
            raise RedisLost(self._channel.decode()) from exc
        if receivers == 0 and not self._in_grace():
            self.gone = True
            raise ReplyGone(self._channel)

    async def start(self, meta: StartMeta) -> None:
        """Announce the pickup. Its reply is checked by callback, so the upstream call
        starts without waiting for a Redis round trip (nobody listening cancels the job).
        It may wait the coalescing window to share a write with other frames (the first
        content frame, urgent, takes it along): the API only needs it within its pickup
        timeout. Measured with the API's UNSUBSCRIBE (bench/README.md,
        `urgent-start-unsubscribe`): without it, 8–9 % more CPU per request in (b), (e)."""
        conn = self._conn.current() or await self._connection()
        frame = self._next(START, meta, b"")
        if conn is not None:
            publish_checked(conn, self._channel, frame, self._check)
        self._beat = asyncio.create_task(self._heartbeat())

    async def delta(self, payload: bytes, meta: RouteMeta | None = None) -> None:
        """The first delta (it carries meta) goes out at once and its reply is awaited: it
        is the caller's first token. Later ones may wait a couple of milliseconds to share
        a write, and their replies are checked by callback, so relaying a stream does not
        yield to the event loop once per frame."""
        conn = self._conn.current()
        if meta is not None or conn is None:
            await self._send(DELTA, meta, payload, urgent=meta is not None)
            return
        if self.closed:
            return
        frame = self._next(DELTA, None, payload)
        publish_checked(conn, self._channel, frame, self._check)
        if self.gone:
            raise ReplyGone(self._channel.decode())
        if conn.backlogged:  # Redis reads slower than the upstream writes: wait for it
            await self._conn.drain(conn)

    def _check(self, reply: Any) -> None:
        """A frame nobody received (caller gone) or that Redis refused (or never got) ends
        the job, unless an outage's grace window runs (the frame is buffered for replay).
        Called by the connection's reader as the reply arrives (`publish_checked`)."""
        if isinstance(reply, int) and reply != 0:
            return
        if self._in_grace():
            return
        self.gone = True
        if not self.closed:
            self._cancel()

    async def replay(self, seq: int) -> None:
        """Re-publish the frames from `seq` on (the API's next expected one); frames before
        it are acknowledged and dropped. If `seq` is no longer buffered, a `reply_lost`
        error frame takes its place and the job is cancelled."""
        if seq < 0 or seq > self._seq:
            return
        conn = self._conn.current()
        if conn is None:
            try:
                conn = await self._conn.connection()
            except ConnectionError:
                return  # the API asks again
        frames = self._frames
        if seq < self._first:
            log.warning(
                "reply %s cannot be resumed at frame %d (oldest kept: %d)",
                self._channel.decode(),
                seq,
                self._first,
            )
            out = [_unrecoverable(seq)]
            frames.clear()
            self._size = 0
            self._first = self._seq
            if not self.closed:
                self._cancel()
        else:
            while self._first < seq and frames:  # acknowledged
                self._size -= len(frames.popleft())
                self._first += 1
            out = list(islice(frames, seq - self._first, None))
        for frame in out:  # one write for all of them (queued in this iteration)
            publish(conn, self._channel, frame).add_done_callback(_retrieve)

    async def done(self, meta: RouteMeta, payload: bytes = b"") -> None:
        await self._send(DONE, meta, payload)
        await self.close()

    async def error(self, meta: ErrorMeta, payload: bytes) -> None:
        with contextlib.suppress(ReplyGone):
            await self._send(ERROR, meta, payload)
        await self.close()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._replays is not None:
                self._replays.finish(self)
        if self._beat is not None and self._beat is not asyncio.current_task():
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat
        self._beat = None

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            await asyncio.sleep(self._interval)
            if self.closed:
                return
            if self._replays is not None and self._conn.current() is None:
                if self._in_grace():  # riding out an outage: no frames, reconnect
                    self._conn.reconnect_soon()
                    continue
                try:
                    await self._conn.connection()
                except ConnectionError:
                    self._cancel()  # the window is over with Redis still away
                    return
            if loop.time() - self._last < self._interval * 0.9:
                continue
            try:
                await self._send(HEARTBEAT, None, b"")
            except ReplyGone:
                self._cancel()
                return
            except Exception:  # Redis trouble: the job's own publishes will surface it
                continue


def _retrieve(future: asyncio.Future[list[Any]]) -> None:
    if not future.cancelled():
        future.exception()
