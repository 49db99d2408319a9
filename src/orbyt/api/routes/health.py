"""Operator endpoints: liveness, readiness and Prometheus metrics (`/metrics`, behind
ORBYT_METRICS_KEY when set, see `api.edge.RequireKey`)."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.redis import queue

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when both Redis roles answer and some worker of the chat queue is alive."""
    st: AppState = request.app.state.orbyt
    checks = {"redis": False, "workers": False}
    with contextlib.suppress(Exception):
        await st.redis.ping()
        if st.queue_redis is not st.redis:
            await st.queue_redis.ping()
        checks["redis"] = True
        checks["workers"] = await queue.workers_alive(st.queue_redis, st.settings.chat_queue)
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    st: AppState = request.app.state.orbyt
    with contextlib.suppress(Exception):  # metrics stay readable while Redis is down
        metrics.QUEUE_DEPTH.set(await st.queue_redis.zcard(st.settings.chat_queue))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
