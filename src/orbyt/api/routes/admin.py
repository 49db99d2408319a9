"""Admin API (Orbyt-specific): gateway keys and usage, guarded by ORBYT_ADMIN_KEY."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from orbyt.api.auth import bearer
from orbyt.api.keystore import KeyStore
from orbyt.api.state import AppState
from orbyt.shared.errors import AuthenticationFailed, NotFound, PermissionDenied
from orbyt.shared.usage import day, read

router = APIRouter(prefix="/admin", tags=["admin"])


def admin(request: Request) -> AppState:
    st: AppState = request.app.state.orbyt
    configured = st.settings.admin_key
    if configured is None or not configured.get_secret_value():  # unset, or set empty
        raise PermissionDenied("The admin API is disabled (ORBYT_ADMIN_KEY is not set).")
    token = bearer(request.headers.get("authorization"))
    if not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        raise AuthenticationFailed("Incorrect admin key.")
    return st


Admin = Annotated[AppState, Depends(admin)]


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    rpm: int = Field(0, ge=0, le=10_000_000)
    concurrency: int = Field(0, ge=0, le=1_000_000)
    pool: bool = True


@router.post("/keys")
async def create_key(body: NewKey, st: Admin) -> dict[str, Any]:
    key, record = await KeyStore(st.redis).create(body.name, body.rpm, body.concurrency, body.pool)
    return {**record.public(), "key": key}


@router.get("/keys")
async def list_keys(st: Admin) -> dict[str, Any]:
    return {"object": "list", "data": [k.public() for k in await KeyStore(st.redis).list()]}


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, st: Admin) -> dict[str, Any]:
    if not await KeyStore(st.redis).revoke(key_id):
        raise NotFound(f"No key with id {key_id!r}.", param="key_id")
    return {"id": key_id, "revoked": True}


@router.get("/usage")
async def usage(
    st: Admin,
    key_id: Annotated[str, Query(min_length=1)],
    on: Annotated[str | None, Query(alias="day", pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
) -> dict[str, Any]:
    when = on or day()
    return {"key_id": key_id, "day": when, "models": await read(st.redis, key_id, when)}
