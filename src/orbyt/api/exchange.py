"""One API exchange with the workers, from subscribe to unsubscribe (DESIGN §6.2).

`Exchange` is an async context manager that owns everything one request opens: the reply
subscription, the queued job (and its BYOK side-car), the watch on the HTTP client and the
`Ledger`. Inside it, `start()` subscribes, enqueues, waits for a worker's start frame and
returns the first content frame; `next()` returns the following ones. Whatever happens,
leaving the block unsubscribes once, closes the ledger once, and calls the job off once
unless a worker ended it (`queue.abandon`: withdrawn if still queued, else cancelled).

The client is watched from the moment the exchange is entered (the request body has been
read by then): a disconnect wakes whatever the exchange waits for (pickup, first frame,
next frame, a non-stream answer), the job is called off at once, and the block ends
quietly (`ClientGone` is swallowed; nothing is logged as an error, nothing is sent).

Resuming (DESIGN §6.2, `shared.redis.hub`): when the hub re-subscribes after a lost
connection, or a frame arrives past the next expected sequence (frames were lost), the
exchange asks on the resume channel (`<seq>|<channel>`, repeated every `RESUME_ASK_EVERY`
seconds while nothing in order arrives) for a replay from the next sequence it expects —
its own count, never the worker's view of what was published. Frames below it are
duplicates and dropped; frames past it wait for the replay. If nothing in order arrives
within `reply_resume_s` of the loss, the request ends with `reply_lost` (never a hang,
never a gap). A job not yet started when the outage began gets the pickup timeout (from
the re-subscription) for a worker to answer with its start frame; then it is withdrawn,
and if it is no longer in the queue (a non-persistent queue Redis restarted) the request
ends with a 503 `queue_lost` (it never ran; retrying it is safe).

Errors leave as `OrbytError`s for the caller to render; a DONE or ERROR frame is written
to the ledger before it is returned, so the caller's concurrency slot is free before the
client sees the end of the answer.

About 350 lines: the API half of the resume protocol belongs with the frame order it
restores.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

from redis.exceptions import RedisError
from starlette.types import Receive

from orbyt.api.edge import frame_status
from orbyt.api.ledger import Ledger
from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.contract import (
    DELTA,
    DONE,
    ERROR,
    HEARTBEAT,
    RESUME_CHANNEL,
    START,
    ChatJob,
    Frame,
    decode_frame,
)
from orbyt.shared.errors import GatewayTimeout, OrbytError, ServiceUnavailable
from orbyt.shared.redis import queue
from orbyt.shared.redis.fast import publish
from orbyt.shared.redis.hub import Subscription, SubscriptionFailed, SubscriptionResumed

log = logging.getLogger("orbyt.api")
_CONTENT_KINDS = (DELTA, DONE, ERROR)

RESUME_ASK_EVERY = 0.25  # seconds between resume requests while nothing in order arrives
RESUME_FLOOR = 1.0  # seconds a re-subscribed reply has for its replay, even late in the window
_RESUME = RESUME_CHANNEL.encode()

Sidecar = tuple[str, bytes, int]  # (key, sealed blob, TTL ms), see api.auth.seal_sidecar


class ClientGone(Exception):
    """The HTTP client went away: nothing more is sent, the job is called off."""


def redis_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("The gateway cannot reach Redis.", code="redis_unavailable")


def reply_lost(reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"The reply stream broke: {reason}.", code="reply_lost")


def queue_lost() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The request was waiting in the queue when the gateway lost Redis, and no worker "
        "had started it; it was not run. Retry it.",
        code="queue_lost",
    )


def worker_lost() -> GatewayTimeout:
    return GatewayTimeout("The worker serving this request stopped responding.", code="worker_lost")


class Exchange:
    def __init__(
        self,
        st: AppState,
        job: ChatJob,
        sidecar: Sidecar | None,
        ledger: Ledger,
        receive: Receive,
    ) -> None:
        self._st = st
        self.job = job
        self._sidecar = sidecar
        self._ledger = ledger
        self._receive = receive
        self._sub: Subscription | None = None
        self._seq = 0
        self._resume_by: float | None = None  # resuming: give up at this monotonic time
        self._asked = 0.0  # when the last resume request went out
        self._resumed = False  # the reply was resumed at least once
        self._queued = False  # the job may exist: call it off unless settled
        self._settled = False  # a worker ended it, or it was withdrawn
        self.gone = False
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Exchange:
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._watcher is not None:
            self._watcher.cancel()
        gone = self.gone or isinstance(exc, ClientGone | asyncio.CancelledError)
        if self._sub is not None:  # first: a worker's start frame then finds nobody
            self._st.hub.unsubscribe(self._sub)  # listening and the worker stops by itself
        if self._queued and not self._settled:
            self._st.spawn(self._abandon())
        if gone:
            await self._ledger.close(499, None)
        elif isinstance(exc, OrbytError):
            await self._ledger.close(exc.status, None)
        else:
            await self._ledger.close(500 if exc is not None else 499, None)
        # the client cannot read an error any more; a bug still propagates
        return gone and (exc is None or isinstance(exc, ClientGone | OrbytError | OSError))

    async def start(self) -> Frame:
        """Subscribe, enqueue, wait for pickup: the first content frame (DELTA, DONE, ERROR)."""
        started = time.monotonic()
        try:
            self._sub = await self._st.hub.subscribe(self.job["channel"])
            self._check_client()
            self._queued = True
            settings = self._st.settings
            if (parent := self._ledger.traceparent) is not None:  # tracing on
                self.job["traceparent"] = parent
            await queue.enqueue(
                self._st.fast, settings.chat_queue, self.job, settings.pickup_timeout, self._sidecar
            )
        except (OSError, TimeoutError, RedisError):
            raise redis_unavailable() from None
        metrics.ENQUEUE_SECONDS.observe(time.monotonic() - started)
        await self._pickup()
        started = time.monotonic()
        frame = await self.next()
        if frame.kind == DELTA:
            self._ledger.first_content()
        if self.job["stream"] and frame.kind != ERROR:
            provider = str((frame.meta or {}).get("provider", "other"))
            metrics.child(metrics.TTFT_SECONDS, provider).observe(time.monotonic() - started)
        return frame

    async def next(self) -> Frame:
        """The next content frame; a DONE or ERROR frame is written to the ledger first.
        Raises ClientGone, or an OrbytError (already in the ledger) when the reply broke."""
        try:
            frame = await self._content()
        except OrbytError as err:
            await self._ledger.close(err.status, None)
            raise
        if frame.kind in (DONE, ERROR):
            self._settled = True
            await self._ledger.close(frame_status(frame), frame.meta)
        return frame

    def ready(self) -> bool:
        """The next content frame in order is already here: `next()` returns it without
        waiting (the stream relay writes frames that arrived together in one send)."""
        sub = self._sub
        if sub is None or not sub.frames:
            return False
        data = sub.frames[0]
        return data[:1] in _CONTENT_KINDS and data[1 : data.find(b"|")] == b"%d" % self._seq

    async def _content(self) -> Frame:
        try:
            frame = await self._frame(None)
        except TimeoutError:
            raise worker_lost() from None
        if frame.kind == DELTA and not self.job["stream"]:
            raise reply_lost(f"unexpected frame {frame.kind!r} in a non-stream reply")
        if frame.kind not in (DELTA, DONE, ERROR):
            raise reply_lost(f"unexpected frame {frame.kind!r}")
        return frame

    async def _pickup(self) -> None:
        timeout = self._st.settings.pickup_timeout
        started = time.monotonic()
        try:
            frame = await self._frame(timeout)
        except TimeoutError:
            try:
                withdrawn = await queue.withdraw(
                    self._st.queue_redis, self._st.settings.chat_queue, self.job["rid"]
                )
            except (OSError, RedisError):
                raise redis_unavailable() from None
            if self._resumed and not withdrawn and self._seq == 0:
                raise queue_lost() from None  # the queue Redis restarted without it
            if withdrawn:
                self._settled = True
                raise ServiceUnavailable(
                    f"No worker picked up the request within {timeout:g} s; the gateway's "
                    "workers are down or overloaded.",
                    code="no_worker",
                ) from None
            try:
                frame = await self._frame(None)  # a worker took it just now
            except TimeoutError:
                raise worker_lost() from None
        if frame.kind != START:
            raise reply_lost("reply did not start with a start frame")
        metrics.PICKUP_SECONDS.observe(time.monotonic() - started)

    async def _frame(self, timeout: float | None) -> Frame:
        """The next frame in order, heartbeats and duplicates skipped, a lost stretch asked
        for again (module docstring); TimeoutError if none comes in time."""
        sub = self._sub
        assert sub is not None
        wait = timeout or self._st.settings.heartbeat_timeout
        while True:
            self._check_client()
            try:
                resuming = self._resume_by is not None or sub.resuming
                data = await sub.next(RESUME_ASK_EVERY if resuming else wait)
            except SubscriptionFailed as exc:
                self._check_client()
                raise reply_lost(str(exc)) from None
            except SubscriptionResumed:
                self._resumed = True
                window = self._st.settings.reply_resume_s
                if self._seq == 0:  # not started yet: the pickup timeout, from now
                    window = min(window, time.monotonic() - _mono(sub.lost_at) + wait)
                # at least RESUME_FLOOR for the replay to arrive, however late the hub was back
                now = time.monotonic()
                self._resume_by = max(_mono(sub.lost_at) + window, now + RESUME_FLOOR)
                self._ask()
                continue
            except TimeoutError:
                self._still_resuming(sub)
                continue
            try:
                frame = decode_frame(data)
            except ValueError:
                raise reply_lost("malformed reply frame") from None
            if frame.seq != self._seq:
                if frame.seq < self._seq:
                    continue  # replayed, already seen
                if self._resume_by is None:  # a stretch was lost: have it replayed
                    self._resume_by = time.monotonic() + self._st.settings.reply_resume_s
                self._ask()
                continue
            self._seq += 1
            if self._resume_by is not None:
                self._resume_by = None
                metrics.child(metrics.REPLY_RESUMES, "resumed").inc()
            if frame.kind != HEARTBEAT:
                return frame

    def _still_resuming(self, sub: Subscription) -> None:
        """Nothing in order came in time: ask again while a resume may still succeed; raise
        TimeoutError (not resuming, or a pickup that gives up) or `reply_lost` otherwise."""
        window = self._st.settings.reply_resume_s
        if sub.resuming:  # the hub is reconnecting (it fails `sub` past its own window)
            if time.monotonic() - _mono(sub.lost_at) < window:
                return
            if self._seq == 0:
                raise TimeoutError  # the pickup gives up (and withdraws the job)
            raise self._gave_up(window)
        if self._resume_by is None:
            raise TimeoutError
        if time.monotonic() >= self._resume_by:
            if self._seq == 0:
                raise TimeoutError  # the pickup gives up (and withdraws the job)
            raise self._gave_up(window)
        self._ask()

    @staticmethod
    def _gave_up(window: float) -> ServiceUnavailable:
        """The reply could not be resumed in time: counted, and said in Orbyt's words."""
        metrics.child(metrics.REPLY_RESUMES, "lost").inc()
        return reply_lost(_not_resumed(window))

    def _ask(self) -> None:
        """Ask (on the resume channel) for the frames from the next expected one, at most
        every RESUME_ASK_EVERY seconds; a failure is retried by the next ask."""
        now = time.monotonic()
        if now - self._asked < RESUME_ASK_EVERY:
            return
        fast = self._st.fast
        conn = fast.current()
        if conn is None:  # reconnecting: asked again at the next poll, never waited on here
            fast.reconnect_soon()
            return
        self._asked = now
        message = b"%d|%s" % (self._seq, self.job["channel"].encode())
        publish(conn, _RESUME, message).add_done_callback(_retrieve)

    def _check_client(self) -> None:
        if self.gone:
            raise ClientGone

    async def _watch(self) -> None:
        """Wait for the client's disconnect; then wake the exchange wherever it waits."""
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception:  # a server that fails `receive` once the client has gone
            pass
        if not self._ledger.closed:
            self.gone = True
            if self._sub is not None:
                self._sub.fail("the client went away")

    async def _abandon(self) -> None:
        rid = self.job["rid"]
        try:
            withdrawn = await queue.abandon(self._st.queue_redis, self._st.settings.chat_queue, rid)
        except Exception as exc:  # Redis away: the job's own expiry and heartbeats end it
            log.warning("could not call off request %s: %s", rid, type(exc).__name__)
            return
        log.info("request %s called off (%s)", rid, "withdrawn" if withdrawn else "cancelled")


def _mono(loop_time: float) -> float:
    """A loop time as `time.monotonic()` (asyncio's default clock; uvloop's differs by a
    constant, measured here)."""
    return loop_time - asyncio.get_running_loop().time() + time.monotonic()


def _not_resumed(window: float) -> str:
    return f"the gateway lost Redis and could not resume the reply within {window:g} s"


def _retrieve(future: asyncio.Future[list[object]]) -> None:
    if not future.cancelled():
        future.exception()
