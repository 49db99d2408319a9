"""Admin API (Orbyt-specific): gateway keys, usage, route health and batches, guarded by
ORBYT_ADMIN_KEY. The admin console (`api.console`) shows what these endpoints answer, by
calling the same functions (`api.console.queries`, `api.console.reports`)."""

from __future__ import annotations

import hmac
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orbyt.api.auth import bearer
from orbyt.api.console import queries, reports
from orbyt.api.keystore import KeyStore, name_problem
from orbyt.api.state import AppState
from orbyt.shared.errors import AuthenticationFailed, NotFound, PermissionDenied, shown_id
from orbyt.shared.settings import Settings
from orbyt.shared.usage import day, read

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses={
        400: {"description": "Invalid parameter (OpenAI error JSON)", "content": _ERROR},
        401: {"description": "Missing or wrong admin key", "content": _ERROR},
        403: {"description": "The admin API is off (ORBYT_ADMIN_KEY unset)", "content": _ERROR},
        404: {"description": "No such key or batch", "content": _ERROR},
    },
)
DAY = r"^\d{4}-\d{2}-\d{2}$"
_KEY_ID = re.compile(r"key_[0-9a-f]{16}")


def _shown_key_id(value: str) -> str:
    """A key id as a 404 repeats it: only one of the shape KeyStore issues."""
    return repr(value) if _KEY_ID.fullmatch(value) else "given"


def configured_admin_key(settings: Settings) -> str:
    """The admin key; PermissionDenied when it is unset (or set empty)."""
    configured = settings.admin_key
    if configured is None or not configured.get_secret_value():
        raise PermissionDenied("The admin API is disabled (ORBYT_ADMIN_KEY is not set).")
    return configured.get_secret_value()


def admin_key_matches(settings: Settings, token: str) -> bool:
    """Whether `token` is the admin key, by hmac.compare_digest (time independent of where
    the two differ). PermissionDenied when the admin key is unset."""
    return hmac.compare_digest(token.encode(), configured_admin_key(settings).encode())


def admin(request: Request) -> AppState:
    st: AppState = request.app.state.orbyt
    configured_admin_key(st.settings)  # disabled: 403 before anything else
    token = bearer(request.headers.get("authorization"))
    if not admin_key_matches(st.settings, token):
        raise AuthenticationFailed("Incorrect admin key.")
    return st


Admin = Annotated[AppState, Depends(admin)]


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    rpm: int = Field(0, ge=0, le=10_000_000)
    concurrency: int = Field(0, ge=0, le=1_000_000)
    pool: bool = True

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        problem = name_problem(name)
        if problem:
            raise ValueError(problem)
        return name


class KeyChange(BaseModel):
    """Fields to change; absent ones keep their value."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(None, ge=0, le=10_000_000)
    concurrency: int | None = Field(None, ge=0, le=1_000_000)
    pool: bool | None = None


class KeyRecord(BaseModel):
    id: str
    name: str
    rpm: int = Field(description="requests per minute; 0 = unlimited")
    concurrency: int = Field(description="requests at once; 0 = unlimited")
    pool: bool = Field(description="may use the gateway's own provider keys")
    created: int
    revoked: bool
    hint: str = Field("", description="the key's last 4 characters")


class KeyOut(KeyRecord):
    last_used: int | None = Field(None, description="unix seconds of its last request")


class KeyCreated(KeyRecord):
    key: str = Field(description="the key itself: shown in this answer only, never again")


class KeyRevoked(BaseModel):
    id: str
    revoked: bool


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


class UsageGroup(BaseModel):
    group: str
    requests: int
    errors: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float = Field(description="gateway-billed (pool keys)")
    byok_requests: int
    provider_billed_cost_usd: float = Field(description="BYOK: paid by the caller's account")
    batch_requests: int
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class UsageSummary(BaseModel):
    object: Literal["usage.summary"] = "usage.summary"
    group_by: reports.GroupBy
    days: list[str]
    data: list[UsageGroup]
    total: UsageGroup


class RouteHealth(BaseModel):
    route: str
    provider: str
    model: str
    deployment: str
    breaker: Literal["closed", "open", "half_open"]
    consecutive_failures: int
    open_until_ms: int | None
    error_rate: float | None = Field(description="EWMA over recent attempts, 0..1")
    ttft_ewma_ms: float | None
    observations: int
    cooled_pool_keys: int
    disabled_pool_keys: int


class PoolHealth(BaseModel):
    pool: str = Field(description="provider@deployment")
    keys: int
    cooled: int
    disabled: int


class RoutesOut(BaseModel):
    routes: list[RouteHealth]
    pools: list[PoolHealth]
    chat_queue_depth: int
    batch_queue_depth: int
    live_worker_hosts: int
    workers_alive: bool


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]] = Field(description="OpenAI batch objects plus `owner` (key id)")


@router.post("/keys", response_model=KeyCreated)
async def create_key(body: NewKey, st: Admin) -> dict[str, Any]:
    """Create a gateway key; the answer holds the key itself, shown this once."""
    key, record = await KeyStore(st.redis).create(body.name, body.rpm, body.concurrency, body.pool)
    return {**record.public(), "key": key}


@router.get("/keys", response_model=KeyList)
async def list_keys(st: Admin) -> dict[str, Any]:
    return {"object": "list", "data": await queries.keys(st)}


@router.patch("/keys/{key_id}", response_model=KeyOut)
async def update_key(key_id: str, body: KeyChange, st: Admin) -> dict[str, Any]:
    """Change a key's limits or pool permission."""
    found = await KeyStore(st.redis).update(key_id, body.rpm, body.concurrency, body.pool)
    if found is None:
        raise NotFound(f"No key with id {_shown_key_id(key_id)}.", param="key_id")
    return found.public()


@router.post("/keys/{key_id}/revoke", response_model=KeyRevoked)
async def revoke_key(key_id: str, st: Admin) -> dict[str, Any]:
    if not await KeyStore(st.redis).revoke(key_id):
        raise NotFound(f"No key with id {_shown_key_id(key_id)}.", param="key_id")
    return {"id": key_id, "revoked": True}


@router.get("/usage")
async def usage(
    st: Admin,
    key_id: Annotated[str, Query(min_length=1)],
    on: Annotated[str | None, Query(alias="day", pattern=DAY)] = None,
) -> dict[str, Any]:
    when = on or day()
    return {"key_id": key_id, "day": when, "models": await read(st.redis, key_id, when)}


FromDay = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD, UTC")]
ToDay = Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, UTC; default today")]


async def summary(
    st: AppState, start: str | None, end: str | None, group_by: reports.GroupBy
) -> dict[str, Any]:
    """The usage summary the endpoint answers and the console's Usage page shows."""
    days = reports.day_range(start, end)
    rows = await queries.usage_rows(st, days)
    data, total = reports.summarize(rows, group_by, days)
    return {
        "object": "usage.summary",
        "group_by": group_by,
        "days": days,
        "data": data,
        "total": total,
    }


@router.get("/usage/summary", response_model=UsageSummary)
async def usage_summary(
    st: Admin, start: FromDay = None, end: ToDay = None, group_by: reports.GroupBy = "day"
) -> dict[str, Any]:
    """Requests, tokens, cost (pool and BYOK apart), error rate and p50/p95 latency, per
    key, model, provider or day, over at most 90 days (default the last 7)."""
    return await summary(st, start, end, group_by)


@router.get(
    "/usage.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one line per day/key/model"}},
)
async def usage_csv(st: Admin, start: FromDay = None, end: ToDay = None) -> Response:
    """Every counter per (day, key, model) as CSV; costs in USD millionths."""
    return csv_response(await queries.usage_rows(st, reports.day_range(start, end)))


def csv_response(rows: list[Any]) -> Response:
    return Response(
        reports.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="orbyt-usage.csv"'},
    )


@router.get("/routes", response_model=RoutesOut)
async def routes(st: Admin) -> dict[str, Any]:
    """Breaker state, recent error rate and TTFT per (provider, model, deployment); pool key
    counts (cooled, disabled; never a key); queue depths and live workers."""
    return await queries.routes(st)


@router.get("/batches", response_model=BatchList)
async def list_batches(
    st: Admin, limit: Annotated[int, Query(ge=1, le=queries.MAX_BATCHES)] = 100
) -> dict[str, Any]:
    """The newest batches of every key."""
    return {"object": "list", "data": await queries.batches(st, limit)}


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, st: Admin) -> dict[str, Any]:
    """Cancel a batch of any key: no new line starts, lines in flight finish."""
    return await queries.cancel_batch(st, batch_id)


@router.get(
    "/batches/{batch_id}/{which}",
    response_class=Response,
    responses={200: {"content": {"application/jsonl": {}}}},
)
async def batch_file(batch_id: str, which: Literal["output", "error"], st: Admin) -> Response:
    """Download a batch's output or error file (JSONL)."""
    return jsonl_response(batch_id, which, await queries.batch_file(st, batch_id, which))


def jsonl_response(batch_id: str, which: str, data: bytes) -> Response:
    name = f"{shown_id(batch_id)}-{which}.jsonl".replace('"', "")
    return Response(
        data,
        media_type="application/jsonl",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
