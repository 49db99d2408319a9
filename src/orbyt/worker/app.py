"""The arq worker: settings DESIGN §6.1 depends on, wake-on-enqueue polling, started jobs
removed from the queue, jobs cancelled before pickup dropped, and the cancel listener.

arq provides the worker's run loop, signal handling and health key; jobs are claimed and
run by `OrbytWorker` itself and get a typed `WorkerContext`, never arq's `ctx` dict."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import orjson
from redis.exceptions import RedisError

from orbyt.shared import metrics, tracing
from orbyt.shared.contract import (
    CANCEL_CHANNEL,
    JOB_FUNCTION,
    RESUME_CHANNEL,
    ChatJob,
    wake_channel,
)
from orbyt.shared.redis import queue, roles
from orbyt.shared.redis.arq_fence import ArqRedis, Worker, func
from orbyt.shared.redis.clients import client
from orbyt.shared.redis.hub import PubSubHub, SubscriptionFailed, SubscriptionResumed
from orbyt.shared.settings import Settings, get_settings
from orbyt.worker.batch import BatchRunner
from orbyt.worker.context import WorkerContext, serve_metrics
from orbyt.worker.publisher import Replays
from orbyt.worker.serve import serve

log = logging.getLogger("orbyt.worker")


def _type_name(obj: Any) -> str:
    return type(obj).__name__  # arq's own failure results (e.g. JobExecutionFailed): name only


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_type_name)


async def _arq_chat(ctx: dict[str, Any], job: ChatJob) -> None:
    """The job function as arq registers it (its name and timeout); `OrbytWorker` claims
    and runs chat jobs itself (`OrbytWorker._run`), so arq never calls this."""
    raise RuntimeError("chat jobs are run by OrbytWorker, not by arq's run_job")


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
        self._alive_at = -queue.ALIVE_EVERY
        self._traced = False  # this worker turned tracing on (OTEL_* variables)
        self.batch: BatchRunner | None = None  # the batch line pool (batch_concurrency > 0)

    @property
    def context(self) -> WorkerContext:
        if self._context is None:
            raise RuntimeError("the worker has not started")
        return self._context

    async def prepare(self) -> None:
        """Load the claim script and build the `WorkerContext` (once). The arq pool is the
        queue role's client, given to arq by `build_worker`."""
        self._claim = queue.Claimer(self.pool, self.queue_name, self.in_progress_timeout_s)
        if self._context is None:
            serve_metrics(self.settings)
            self._traced = tracing.setup("orbyt-worker")
            self._context = WorkerContext.create(self.settings, self.pool)
            if self.settings.reply_resume_s > 0:  # reply frames kept for resuming
                link = self._context.publisher
                live = roles.liveness(self.settings)
                link.replays = Replays(
                    link,
                    self.settings.reply_resume_s,
                    self.settings.reply_replay_bytes,
                    linger=live.ping_interval + live.dead_after + 1.0,
                )
        if self.batch is None and self.settings.batch_concurrency > 0:
            state = self._context.state or self.pool  # batches live in the state role
            self.batch = BatchRunner(self._context, state, lambda: self.allow_pick_jobs)

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
        """Wake-ups and cancellations, on one hardened pub/sub connection (`PubSubHub`: idle
        PING, a half-open connection replaced within seconds); each channel resubscribes
        after a failure, and a resubscribed wake-up channel polls at once (jobs enqueued
        meanwhile are not left waiting for the fallback poll). The resume channel carries
        the API's requests to replay reply frames after an outage (`publisher.Replays`)."""
        hub = PubSubHub(
            roles.queue_url(self.settings),
            100_000,
            roles.liveness(self.settings),
            resume=self.settings.reply_resume_s,
        )
        batch = self.settings.batch_queue
        try:
            await asyncio.gather(
                self._follow(hub, wake_channel(self.queue_name), lambda _: self._wake.set()),
                self._follow(hub, wake_channel(batch), lambda _: self._wake_batch()),
                self._follow(hub, CANCEL_CHANNEL, self._cancel),
                self._follow(hub, RESUME_CHANNEL, self._resume),
            )
        finally:
            await hub.close()

    def _cancel(self, rid: str) -> None:
        if rid:
            self.context.jobs.cancel(rid)

    def _resume(self, message: str) -> None:
        replays: Replays | None = self.context.publisher.replays
        if message and replays is not None:
            replays.resume(message)

    def _wake_batch(self) -> None:
        if self.batch is not None:
            self.batch.wake()

    @staticmethod
    async def _follow(hub: PubSubHub, channel: str, handle: Callable[[str], None]) -> None:
        again = False
        while True:
            try:
                sub = await hub.subscribe(channel)
                if again:  # resubscribed: whatever was published meanwhile is looked at
                    handle("")
                while True:
                    try:
                        handle((await sub.next(3600)).decode())
                    except TimeoutError:
                        pass
                    except SubscriptionResumed:  # back after an outage: look again
                        handle("")
            except (SubscriptionFailed, ConnectionError, TimeoutError) as exc:
                log.info("worker pub/sub on %s interrupted (%s); resubscribing", channel, exc)
                again = True
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
        now = self.loop.time()
        if now - self._alive_at >= queue.ALIVE_EVERY:
            self._alive_at = now
            await queue.mark_alive(self.pool, self.queue_name, socket.gethostname())

    async def claim(self) -> list[tuple[str, bytes]]:
        """(job id, job data) of every ready job this worker has room for, now its own."""
        free = self.max_jobs - self.job_counter
        if not self.allow_pick_jobs or free <= 0:
            return []
        claimed: list[tuple[str, bytes]] = await self._claim.claim(min(free, self.queue_read_limit))
        return claimed

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
            job, enqueued_ms = queue.decode_job(data)
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
                queue.finished(await self.context.publisher.connection(), job_id)


async def check(settings: Settings | None = None) -> bool:
    """Whether a worker on this host polled the chat queue recently (`orbyt worker --check`,
    the container health check)."""
    settings = settings or get_settings()
    redis = roles.queue_client(settings, socket_timeout=5)
    try:
        return await queue.host_alive(redis, settings.chat_queue, socket.gethostname())
    finally:
        await redis.aclose()


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
        redis_pool=client(roles.queue_url(settings), redis_class=ArqRedis),
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
