"""/v1/batches: OpenAI's Batch API, run by Orbyt's own workers (DESIGN §7).

Creating a batch validates its input file at once (in a thread): a bad input gives a batch
that is `failed` with line-numbered `errors`, as OpenAI reports it; `extra.byok` in any line
is a 400. A valid batch is written `in_progress` with its own copy of the input (so deleting
the input file does not disturb it) and joins the batch queue in one transaction. Batches
belong to the gateway key that created them; another key gets 404. A batch whose key is
revoked is cancelled by the workers' next claim: no new line starts, lines in flight finish,
and it ends `cancelled` (the revoked key itself gets 401 for everything).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from orbyt.api.routes.files import file_store, listing, owner_of, page
from orbyt.api.state import AppState
from orbyt.shared import batchfiles
from orbyt.shared.batchkeys import batch_input_object, file_object
from orbyt.shared.batchlines import LINE_KINDS, Validated, validate_input
from orbyt.shared.batchstate import BatchState, new_batch_id, render
from orbyt.shared.contract import wake_channel
from orbyt.shared.errors import InvalidRequest, NotFound, PermissionDenied, shown_id
from orbyt.shared.filestore import FileMissing

router = APIRouter()
_WINDOW = re.compile(r"^([1-9][0-9]{0,2})h$")  # OpenAI's "24h" (any whole hours up to 168)


class CreateBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None


def batch_state(st: AppState) -> BatchState:
    return BatchState(st.redis, st.settings.batch_queue)


def _parse(raw: bytes) -> CreateBatch:
    try:
        req = CreateBatch.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        param = ".".join(str(p) for p in err["loc"]) or None
        if param is None:  # the body itself: not JSON, or nested too deep to parse
            raise InvalidRequest("Request body is not valid JSON.", code="invalid_json") from None
        raise InvalidRequest(f"Invalid value for {param!r}: {err['msg']}.", param=param) from None
    if req.endpoint not in LINE_KINDS:
        raise InvalidRequest(
            f"Unsupported endpoint. Supported: {', '.join(sorted(LINE_KINDS))}.",
            param="endpoint",
        )
    match = _WINDOW.match(req.completion_window)
    if match is None or int(match.group(1)) > 168:
        raise InvalidRequest("'completion_window' must be '24h'.", param="completion_window")
    meta = req.metadata or {}
    if len(meta) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in meta.items()):
        raise InvalidRequest(
            "'metadata' holds at most 16 pairs (keys up to 64, values up to 512 characters).",
            param="metadata",
        )
    return req


def _record(
    st: AppState, owner: str, req: CreateBatch, checked: Validated, now: float
) -> dict[str, str]:
    hours = int(req.completion_window[:-1])
    window = hours * 3600 * st.settings.batch_window_scale
    failed = bool(checked.errors)
    record = {
        "id": new_batch_id(),
        "owner": owner,
        "endpoint": req.endpoint,
        "input_file_id": req.input_file_id,
        "completion_window": req.completion_window,
        "created_at": str(int(now)),
        "created_ms": str(int(now * 1000)),
        "status": "failed" if failed else "in_progress",
        "metadata": orjson.dumps(req.metadata).decode() if req.metadata is not None else "",
        "model": checked.model or "",
        "total": "0" if failed else str(len(checked.lines)),
        "completed": "0",
        "failed": "0",
        "next": "0",
        "inflight": "0",
        "end": "",
        "input_tokens": "0",
        "output_tokens": "0",
        "expires_at": str(int(now + window)),
    }
    if failed:
        record["failed_at"] = str(int(now))
        record["errors"] = orjson.dumps({"object": "list", "data": checked.errors}).decode()
    else:
        record["in_progress_at"] = str(int(now))
    return record


@router.post("/v1/batches")
async def create_batch(request: Request) -> dict[str, Any]:
    st: AppState = request.app.state.orbyt
    principal = await st.auth.authenticate(request.headers.get("authorization"), limits=False)
    owner = principal.key_id
    if not principal.pool_allowed:
        raise PermissionDenied(
            "Batches run on the gateway's provider keys; this API key may not use them.",
            code="pool_not_allowed",
        )
    req = _parse(await request.body())
    if await batchfiles.get(st.redis, req.input_file_id, owner) is None:
        raise NotFound(f"No such File object: {shown_id(req.input_file_id)}", param="input_file_id")
    store = file_store(st)
    try:
        data = await store.get(file_object(req.input_file_id))
    except FileMissing:
        raise NotFound(
            f"No such File object: {shown_id(req.input_file_id)}", param="input_file_id"
        ) from None
    checked = await asyncio.to_thread(validate_input, data, req.endpoint, st.catalog, st.settings)
    record = _record(st, owner, req, checked, time.time())
    if not checked.errors:
        await store.put(batch_input_object(record["id"]), b"\n".join(checked.lines))
    await batch_state(st).create(record, runnable=not checked.errors)
    await st.queue_redis.publish(wake_channel(st.settings.batch_queue), b"1")
    return render(record)


@router.get("/v1/batches")
async def list_batches(
    request: Request, after: str | None = None, limit: int = 20
) -> dict[str, Any]:
    st, owner = await owner_of(request)
    if not 1 <= limit <= 100:
        raise InvalidRequest("'limit' must be between 1 and 100.", param="limit")
    state = batch_state(st)
    chosen, has_more = page(await state.list_ids(owner), after, limit)
    records = [await state.get(bid, owner) for bid in chosen]
    return listing([render(r) for r in records if r], has_more)


async def _owned(st: AppState, batch_id: str, owner: str) -> dict[str, str]:
    record = await batch_state(st).get(batch_id, owner)
    if record is None:
        raise NotFound(f"No such Batch object: {shown_id(batch_id)}", param="batch_id")
    return record


@router.get("/v1/batches/{batch_id}")
async def retrieve_batch(request: Request, batch_id: str) -> dict[str, Any]:
    st, owner = await owner_of(request)
    return render(await _owned(st, batch_id, owner))


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str) -> dict[str, Any]:
    st, owner = await owner_of(request)
    await _owned(st, batch_id, owner)
    await batch_state(st).cancel(batch_id)
    await st.queue_redis.publish(wake_channel(st.settings.batch_queue), b"1")
    return render(await _owned(st, batch_id, owner))
