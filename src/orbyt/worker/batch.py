"""The batch line pool of one worker process (DESIGN §7).

Lines are handed out by `BatchState.claim` (one Lua call): expired leases are put back,
finalizations are handed out, and, unless an interactive job is waiting on the chat queue,
up to `batch_concurrency - running here` lines, never more than `batch_global_concurrency`
leased across all workers. Each claimed line is leased; the lease is renewed every third of
`batch_lease` while the line runs, so only a worker that died (or stalled longer than the
lease) loses its lines, which are then run again by whoever claims next.

Metrics (`shared.metrics`): lines answered by model/provider/outcome, counted once when the
outcome is recorded; lines in flight here; the `orbyt_batches` gauge, sampled with each
lease renewal.

Exactly once: a line's outcome is recorded with `HSETNX` in the same Lua step that marks it
done, counts it and bills its usage, and a line is re-run only if no outcome was recorded.
So every `custom_id` is answered exactly once and billed once in Orbyt's usage. What remains
is the window between the upstream's answer and that one Redis call (normally well under a
millisecond, longer only while Redis is unreachable, then retried for `RECORD_RETRY_FOR`
seconds): a worker killed inside it, or a record that never reaches Redis, loses the answer,
and the line runs again after the lease expires, so the provider may bill that line twice.
A worker shut down gracefully stops claiming, waits `DRAIN_SECONDS` for its lines (still
renewing their leases), then gives the rest back at once.

A line the routing engine could not get past a rate limit (429 after its own retries) is put
back for the upstream's Retry-After, and this process claims no new line for that long:
the batch slows down instead of failing lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orbyt.shared import metrics
from orbyt.shared.batchkeys import batch_input_object
from orbyt.shared.batchstate import BatchState
from orbyt.shared.filestore import FileMissing, store_for
from orbyt.shared.usage import RETENTION_SECONDS, day, increments, usage_key
from orbyt.worker.batchfinal import finalize
from orbyt.worker.batchline import RUNNERS, BatchInfo, LineOutcome
from orbyt.worker.context import WorkerContext

log = logging.getLogger("orbyt.worker.batch")

DRAIN_SECONDS = 10.0
RECORD_RETRY_FOR = 30.0
_CACHED_BATCHES = 4  # batch inputs kept in memory per process


class BatchRunner:
    def __init__(
        self, ctx: WorkerContext, redis: Redis, allowed: Callable[[], bool] = lambda: True
    ) -> None:
        self.ctx = ctx
        self.allowed = allowed  # False while the worker shuts down: claim no new line
        self.settings = s = ctx.settings
        self.state = BatchState(redis, s.batch_queue)
        self.store = store_for(s.file_store)
        self.lines: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.finals: dict[str, asyncio.Task[None]] = {}
        self._inputs: OrderedDict[str, asyncio.Task[tuple[BatchInfo, list[bytes]]]] = OrderedDict()
        self._wake = asyncio.Event()
        self._stopping = False
        self._paused_until = 0.0  # loop time: no new line before (a rate limit)
        self._renew: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and start lines until `close()`; leases are renewed until then too."""
        if self._renew is None:
            self._renew = asyncio.create_task(self._renew_loop())
        while not self._stopping:
            try:
                await self.poll()
            except (OSError, RedisError) as exc:
                log.warning("batch claim failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.worker_poll_delay)
            self._wake.clear()
            await asyncio.sleep(0.002)  # let a few finishing lines share the next claim

    async def poll(self) -> None:
        s = self.settings
        free = max(0, s.batch_concurrency - len(self.lines))
        if not self.allowed() or asyncio.get_running_loop().time() < self._paused_until:
            free = 0  # still reap leases and finalize batches
        claimed = await self.state.claim(
            free, s.batch_global_concurrency, s.batch_lease, s.chat_queue
        )
        for batch_id in claimed.finals:
            if batch_id not in self.finals:
                self.finals[batch_id] = self._spawn_final(batch_id)
        for batch_id, index in claimed.lines:
            task = asyncio.create_task(self._line(batch_id, index))
            self.lines[(batch_id, index)] = task
            metrics.BATCH_LINES_IN_FLIGHT.inc()
            task.add_done_callback(functools.partial(self._done, (batch_id, index)))

    def _done(self, key: tuple[str, int], _: asyncio.Task[None]) -> None:
        if self.lines.pop(key, None) is not None:
            metrics.BATCH_LINES_IN_FLIGHT.dec()
        self._wake.set()

    def _spawn_final(self, batch_id: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._finalize(batch_id))
        task.add_done_callback(lambda _: self.finals.pop(batch_id, None))
        return task

    async def _finalize(self, batch_id: str) -> None:
        try:
            record = await self.state.get(batch_id)
            inputs = None
            if record is not None and record.get("end"):
                with contextlib.suppress(FileMissing):
                    inputs = (await self._batch(batch_id))[1]
            await finalize(self.state, self.state.redis, self.store, batch_id, inputs)
            self._inputs.pop(batch_id, None)
            log.info("batch %s finalized", batch_id)
        except (OSError, RedisError, FileMissing) as exc:  # its lease expires: done again
            log.warning("batch %s finalization failed: %s", batch_id, type(exc).__name__)

    async def _batch(self, batch_id: str) -> tuple[BatchInfo, list[bytes]]:
        """The batch's fixed facts and input lines, loaded once per process (a few cached)."""
        task = self._inputs.get(batch_id)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.create_task(self._load(batch_id))
            self._inputs[batch_id] = task
            while len(self._inputs) > _CACHED_BATCHES:
                self._inputs.popitem(last=False)
        self._inputs.move_to_end(batch_id)
        return await asyncio.shield(task)

    async def _load(self, batch_id: str) -> tuple[BatchInfo, list[bytes]]:
        record = await self.state.get(batch_id)
        if record is None:
            raise FileMissing(batch_id)
        info = BatchInfo(batch_id, record["owner"], record["endpoint"], float(record["expires_at"]))
        data = await self.store.get(batch_input_object(batch_id))
        return info, data.split(b"\n")

    async def _line(self, batch_id: str, index: int) -> None:
        try:
            info, lines = await self._batch(batch_id)
            line = orjson.loads(lines[index])
            outcome = await RUNNERS[info.endpoint](self.ctx, info, index, line)
        except asyncio.CancelledError:
            raise
        except FileMissing:
            log.info("batch %s is gone; line %d dropped", batch_id, index)
            return
        except Exception as exc:  # Redis or the file store away: run the line again later
            log.warning("batch %s line %d could not run: %s", batch_id, index, type(exc).__name__)
            with contextlib.suppress(Exception):
                await self.state.defer(batch_id, index, 1.0)
            return
        await self._settle(batch_id, index, info, outcome)

    async def _settle(self, batch_id: str, index: int, info: BatchInfo, out: LineOutcome) -> None:
        if out.defer is not None:
            log.info("batch %s line %d rate-limited; again in %.1fs", batch_id, index, out.defer)
            until = asyncio.get_running_loop().time() + out.defer
            self._paused_until = max(self._paused_until, until)
            await self.state.defer(batch_id, index, out.defer)
            return
        usage = None
        if out.usage is not None:
            incr = {
                f"{model}|{name}": v
                for (model, name), v in increments(out.usage, self.ctx.catalog).items()
                if v
            }
            usage = (usage_key(info.owner, day()), RETENTION_SECONDS, incr)
        end = time.monotonic() + RECORD_RETRY_FOR
        while True:
            try:
                fresh = await self.state.record(
                    batch_id, index, out.ok, out.output, out.tokens, usage
                )
                if fresh and out.usage is not None:
                    ev = out.usage
                    metrics.observe_batch_line(self.ctx.catalog, ev.model, ev.provider, out.ok)
                return
            except (OSError, RedisError) as exc:
                if time.monotonic() > end:
                    log.warning(
                        "batch %s line %d: outcome lost (%s)", batch_id, index, type(exc).__name__
                    )
                    return
                await asyncio.sleep(0.5)

    async def _renew_loop(self) -> None:
        lease = self.settings.batch_lease
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.state.renew(list(self.lines), lease)
                await self._sample()
            except (OSError, RedisError) as exc:
                log.warning("batch lease renewal failed: %s", type(exc).__name__)

    async def _sample(self) -> None:
        """The batches gauge (every lease/3 seconds, with the lease renewal)."""
        async with self.state.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.state.queue)
            pipe.zcard(self.state.finalize)
            queued, finalizing = await pipe.execute()
        metrics.BATCHES.labels("queued").set(queued)
        metrics.BATCHES.labels("finalizing").set(finalizing)

    async def close(self) -> None:
        """Stop claiming; let running lines finish for a while, then give the rest back."""
        self._stopping = True
        self._wake.set()
        pending = [*self.lines.values(), *self.finals.values()]
        if pending:
            await asyncio.wait(pending, timeout=DRAIN_SECONDS)
        for (batch_id, index), task in list(self.lines.items()):
            task.cancel()
            with contextlib.suppress(Exception):
                await self.state.defer(batch_id, index, 0.0)
        if self._renew is not None:
            self._renew.cancel()
            self._renew = None
