"""The arq worker: settings DESIGN §6.1 depends on, wake-on-enqueue polling, started jobs
removed from the queue, jobs cancelled before pickup dropped, and the cancel listener.

arq provides the worker's run loop, signal handling and health key; jobs are claimed and
run by `OrbytWorker` itself and get a typed `WorkerContext`, never arq's `ctx` dict."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from arq.connections import RedisSettings, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.jobs import deserialize_job_raw
from arq.utils import timestamp_ms
from arq.worker import Worker, func
from redis.exceptions import RedisError

from orbyt.shared import metrics, tracing
from orbyt.shared.contract import (
    CANCEL_CHANNEL,
    JOB_FUNCTION,
    ChatJob,
    byok_key,
    cancel_key,
    wake_channel,
)
from orbyt.shared.resp import command, send_and_forget
from orbyt.shared.settings import Settings, get_settings
from orbyt.worker.batch import BatchRunner
from orbyt.worker.context import WorkerContext, serve_metrics
from orbyt.worker.serve import serve

log = logging.getLogger("orbyt.worker")

_CANCEL_PREFIX = cancel_key("")
_BYOK_PREFIX = byok_key("")


def _type_name(obj: Any) -> str:
    return type(obj).__name__  # arq's own failure results (e.g. JobExecutionFailed): name only


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_type_name)


async def _arq_chat(ctx: dict[str, Any], job: ChatJob) -> None:
    """The job function as arq registers it (its name and timeout); `OrbytWorker` claims
    and runs chat jobs itself (`OrbytWorker._run`), so arq never calls this."""
    raise RuntimeError("chat jobs are run by OrbytWorker, not by arq's run_job")


# KEYS: queue. ARGV: now_ms, limit, in-progress PX ms, in-progress key prefix, job prefix,
# cancel key prefix, BYOK key prefix. Returns [job_id, job data, ...] of the jobs this worker
# now owns. A job whose data is gone (withdrawn by the API after the pickup timeout, or
# expired) or whose caller cancelled it before pickup (its cancel key exists) is dropped
# here, with its data and BYOK side-car: it never starts.
_CLAIM = """
local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,
                         tonumber(ARGV[2]))
local out = {}
for i = 1, #ready do
  local id = ready[i]
  redis.call('ZREM', KEYS[1], id)
  if redis.call('SET', ARGV[4] .. id, '1', 'NX', 'PX', tonumber(ARGV[3])) then
    local data = redis.call('GET', ARGV[5] .. id)
    if data and redis.call('EXISTS', ARGV[6] .. id) == 0 then
      out[#out + 1] = id
      out[#out + 1] = data
    else
      redis.call('DEL', ARGV[4] .. id, ARGV[5] .. id, ARGV[7] .. id)
    end
  end
end
return out
"""


class OrbytWorker(Worker):
    """arq's worker, with the changes the design needs:

    - it wakes on a pub/sub message published with every enqueue (and still polls every
      `poll_delay` as a fallback), so pickup costs milliseconds, not arq's 0.5 s;
    - jobs are claimed by one Lua call per poll that marks them in progress and removes
      them from the queue sorted set atomically, so running jobs are never re-scanned and
      can never be re-run, and pick-up costs one round trip, not four per job;
    - a job cancelled before pickup is dropped by that claim, and a cancel that races the
      claim is remembered by `WorkerContext.jobs` (see `worker.jobs`).
    """

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self._wake = asyncio.Event()
        self._claim: Any = None
        self._context: WorkerContext | None = None
        self._traced = False  # this worker turned tracing on (OTEL_* variables)
        self.batch: BatchRunner | None = None  # the batch line pool (batch_concurrency > 0)

    @property
    def context(self) -> WorkerContext:
        if self._context is None:
            raise RuntimeError("the worker has not started")
        return self._context

    async def prepare(self) -> None:
        """Connect, load the claim script and build the `WorkerContext` (once)."""
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_serializer=self.job_serializer,
                job_deserializer=self.job_deserializer,
                default_queue_name=self.queue_name,
            )
        self._claim = self.pool.register_script(_CLAIM)
        if self._context is None:
            serve_metrics(self.settings)
            self._traced = tracing.setup("orbyt-worker")
            self._context = WorkerContext.create(self.settings, self.pool)
        if self.batch is None and self.settings.batch_concurrency > 0:
            self.batch = BatchRunner(self._context, self.pool, lambda: self.allow_pick_jobs)

    async def main(self) -> None:
        await self.prepare()
        listener = asyncio.create_task(self.listen())
        lag = asyncio.create_task(metrics.watch_loop_lag())
        batch = asyncio.create_task(self.batch.run()) if self.batch is not None else None
        log.info("worker ready on queue %s (max_jobs=%d)", self.queue_name, self.max_jobs)
        try:
            while True:
                try:
                    await self._poll_iteration()
                except (OSError, RedisError) as exc:  # Redis restarting: keep the worker alive
                    log.warning("queue poll failed (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(0.5)
                    continue
                if self.burst and not self.tasks and not await self.pool.zcard(self.queue_name):
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_delay_s)
                self._wake.clear()
        finally:
            listener.cancel()
            lag.cancel()
            if batch is not None:
                batch.cancel()

    async def listen(self) -> None:
        """Wake-ups and cancellations, on one pub/sub connection; reconnects on failure."""
        wake = wake_channel(self.queue_name).encode()
        batch_wake = wake_channel(self.settings.batch_queue).encode()
        while True:
            try:
                pubsub = self.pool.pubsub()
                await pubsub.subscribe(wake, batch_wake, CANCEL_CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    if message["channel"] == wake:
                        self._wake.set()
                    elif message["channel"] == batch_wake:
                        if self.batch is not None:
                            self.batch.wake()
                    else:
                        self.context.jobs.cancel(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "worker pub/sub listener lost its connection (%s); retrying", type(exc).__name__
                )
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        try:
            if self.batch is not None:
                await self.batch.close()
            await super().close()
        finally:
            if self._context is not None:
                await self._context.close()
                self._context = None
            if self._traced:
                tracing.shutdown()

    async def _poll_iteration(self) -> None:
        """arq's poll, with the pick-up done by one Lua call that claims every ready job
        (in-progress marker set, job removed from the queue and its data read, atomically)
        instead of arq's six round trips per job."""
        for job_id, data in await self.claim():
            self.start_job(job_id, data)
        for job_id, t in list(self.tasks.items()):
            if t.done():
                del self.tasks[job_id]
                t.result()  # surface errors of arq's own bookkeeping
        await self.heart_beat()

    async def claim(self) -> list[tuple[str, bytes]]:
        """(job id, job data) of every ready job this worker has room for, now its own."""
        free = self.max_jobs - self.job_counter
        if not self.allow_pick_jobs or free <= 0:
            return []
        claimed = await self._claim(
            keys=[self.queue_name],
            args=[
                timestamp_ms(),
                min(free, self.queue_read_limit),
                int(self.in_progress_timeout_s * 1000),
                in_progress_key_prefix,
                job_key_prefix,
                _CANCEL_PREFIX,
                _BYOK_PREFIX,
            ],
        )
        return [(claimed[i].decode(), claimed[i + 1]) for i in range(0, len(claimed), 2)]

    def start_job(self, job_id: str, data: bytes) -> asyncio.Task[None]:
        """Run a claimed job in its own task (it starts at the loop's next turn)."""
        self.job_counter += 1
        task = self.loop.create_task(self._run(job_id, data))
        task.add_done_callback(lambda _: self._job_finished())
        self.tasks[job_id] = task
        return task

    def _job_finished(self) -> None:
        self.job_counter -= 1

    async def _run(self, job_id: str, data: bytes) -> None:
        """Run a claimed job. arq's run_job would add two pipelines, a retry counter (a
        claimed job can never run twice) and an INFO line with the job's arguments."""
        try:
            function, args, _, _, enqueued_ms = deserialize_job_raw(
                data, deserializer=self.job_deserializer
            )
            if function != JOB_FUNCTION:
                raise ValueError(f"unknown job function {function!r}")
            (job,) = args
            async with asyncio.timeout(
                self.functions[JOB_FUNCTION].timeout_s or self.job_timeout_s
            ):
                await serve(self.context, job, enqueued_ms)
            self.jobs_complete += 1
        except Exception as exc:  # serve() never raises; a malformed job lands here
            self.jobs_failed += 1
            log.error("job %s could not run: %s", job_id, type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):  # fire-and-forget cleanup on the fast conn
                conn = await self.context.publisher.connection()
                send_and_forget(
                    conn,
                    command(
                        b"DEL",
                        (job_key_prefix + job_id).encode(),
                        (in_progress_key_prefix + job_id).encode(),
                    ),
                )


def build_worker(
    settings: Settings | None = None, *, burst: bool = False, drain_seconds: int = 30
) -> OrbytWorker:
    settings = settings or get_settings()
    logging.getLogger("arq").setLevel(logging.WARNING)
    return OrbytWorker(
        functions=[
            func(_arq_chat, name=JOB_FUNCTION, max_tries=1, timeout=settings.default_timeout * 30)
        ],
        settings=settings,
        queue_name=settings.chat_queue,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        burst=burst,
        max_jobs=settings.worker_max_jobs,
        keep_result=0,
        max_tries=1,
        log_results=False,
        poll_delay=settings.worker_poll_delay,
        health_check_interval=2,
        job_serializer=_dumps,
        job_deserializer=orjson.loads,
        job_completion_wait=drain_seconds,
    )
