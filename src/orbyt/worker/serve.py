"""One chat job, from pickup to its last frame: registered with the running jobs (so it can
be cancelled), announced, its BYOK keys taken, its routes walked."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from orbyt.shared import metrics, tracing
from orbyt.shared.contract import RESPONSES, ChatJob, StartMeta, job_kind
from orbyt.shared.errors import OrbytError, ServiceUnavailable
from orbyt.shared.logs import request_id_var
from orbyt.shared.secret import Secret
from orbyt.worker.byok import take_byok
from orbyt.worker.context import WorkerContext
from orbyt.worker.engine import run_chat
from orbyt.worker.jobs import JobCancelled
from orbyt.worker.publisher import Publisher, ReplyGone
from orbyt.worker.reply import Reply, send_error
from orbyt.worker.responses import ResponsesReply

log = logging.getLogger("orbyt.worker")


async def serve(ctx: WorkerContext, job: ChatJob, enqueued_ms: int) -> None:
    """Serve one chat request. Never raises: every outcome is a frame to the caller, except
    a job cancelled before it started, which sends nothing (its caller is gone)."""
    rid = job["rid"]
    task = asyncio.current_task()
    assert task is not None
    if not ctx.jobs.register(rid, task):
        log.debug("request %s was cancelled before it started", rid)
        return
    request_id_var.set(rid)
    metrics.WORKER_PICKUP.observe(max(0.0, time.time() - enqueued_ms / 1000))
    cancel = functools.partial(ctx.jobs.cancel, rid)
    pub = Publisher(ctx.publisher, job["channel"], ctx.settings.heartbeat_interval, cancel)
    reply = (
        ResponsesReply(pub, job, ctx.state or ctx.redis, ctx.settings.responses_ttl)
        if job_kind(job) == RESPONSES
        else Reply(pub, f"chatcmpl-{rid}", int(time.time()))
    )
    byok: dict[str, Secret] = {}
    metrics.ACTIVE_JOBS.inc()
    try:
        await pub.start(StartMeta(worker=ctx.worker_id))
        if job["byok"]:
            byok = await take_byok(ctx.redis, ctx.unseal_keys, rid)
        if tracing.TRACER is None:
            await run_chat(ctx, job, reply, byok)
        else:
            with tracing.job_span(rid, job["plan"][0]["model"], job.get("traceparent")):
                await run_chat(ctx, job, reply, byok)
    except OrbytError as exc:
        await send_error(pub, exc, 0)
    except (ReplyGone, JobCancelled, asyncio.CancelledError):
        log.debug("request %s cancelled by its caller", rid)
    except Exception:
        log.exception("request %s failed inside the worker", rid)
        with contextlib.suppress(Exception):
            await send_error(
                pub, ServiceUnavailable("The gateway worker failed while serving this request."), 0
            )
    finally:
        metrics.ACTIVE_JOBS.dec()
        byok.clear()
        ctx.jobs.unregister(rid)
        await pub.close()
