"""Liveness and readiness."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orbyt.api.state import AppState
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
