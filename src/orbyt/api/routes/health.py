"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orbyt.api.state import AppState

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    st: AppState = request.app.state.orbyt
    checks = {"redis": False, "workers": False}
    try:
        await st.redis.ping()
        checks["redis"] = True
        checks["workers"] = bool(await st.redis.exists(st.settings.chat_queue + ":health-check"))
    except Exception:
        pass
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
