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

Errors leave as `OrbytError`s for the caller to render; a DONE or ERROR frame is written
to the ledger before it is returned, so the caller's concurrency slot is free before the
client sees the end of the answer.
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
from orbyt.shared.contract import DELTA, DONE, ERROR, HEARTBEAT, START, ChatJob, Frame, decode_frame
from orbyt.shared.errors import GatewayTimeout, OrbytError, ServiceUnavailable
from orbyt.shared.redis import queue
from orbyt.shared.redis.hub import Subscription, SubscriptionFailed

log = logging.getLogger("orbyt.api")

Sidecar = tuple[str, bytes, int]  # (key, sealed blob, TTL ms), see api.auth.seal_sidecar


class ClientGone(Exception):
    """The HTTP client went away: nothing more is sent, the job is called off."""


def redis_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("The gateway cannot reach Redis.", code="redis_unavailable")


def reply_lost(reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"The reply stream broke: {reason}.", code="reply_lost")


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
            metrics.TTFT_SECONDS.labels(provider).observe(time.monotonic() - started)
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
        """The next frame in order, heartbeats skipped; TimeoutError if none comes in time."""
        assert self._sub is not None
        while True:
            self._check_client()
            try:
                data = await self._sub.next(timeout or self._st.settings.heartbeat_timeout)
            except SubscriptionFailed as exc:
                self._check_client()
                raise reply_lost(str(exc)) from None
            try:
                frame = decode_frame(data)
            except ValueError:
                raise reply_lost("malformed reply frame") from None
            if frame.seq != self._seq:
                raise reply_lost(f"reply frames lost (expected {self._seq}, got {frame.seq})")
            self._seq += 1
            if frame.kind != HEARTBEAT:
                return frame

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
