"""OpenAI's Responses API: `POST /v1/responses`, `GET|DELETE /v1/responses/{id}` and
`GET /v1/responses/{id}/input_items`.

A POST is served like a chat request (`routes.chat`): the same authentication, validation
helpers (`shared.wire`), plan, BYOK side-car, `Exchange`, queue and workers, as a job of
kind "responses" whose body is the chat translation (`shared.responses.request.to_chat`)
and whose `responses.request` is the Responses body for OpenAI's own API (the native route
of provider `openai`, `worker.native`). Tool types other than `function` are accepted only
when every route of the plan is native. The worker renders the Response (or its events) and
stores it; this module relays the bytes. A stream that breaks after content ends with
`error` and `response.failed` events (numbered on from the events relayed so far), never
with `response.completed`.
Stored responses belong to the gateway key that made them: any other key gets a 404.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.routing import Route

from orbyt.api.auth import Principal
from orbyt.api.endpoint import QueuedEndpoint, allowed_plan, answer, new_job, queued_operation
from orbyt.api.exchange import Exchange, redis_unavailable
from orbyt.api.state import AppState
from orbyt.shared.contract import ERROR, RESPONSES, ChatJob, Frame
from orbyt.shared.errors import OrbytError
from orbyt.shared.responses import store
from orbyt.shared.responses.events import count_events, failed_events
from orbyt.shared.responses.prepare import chat_body, not_found, responses_view
from orbyt.shared.responses.request import RESPONSES_FIELDS, ResponsesRequest
from orbyt.shared.routing import resolve_plan
from orbyt.shared.wire import Extra, check_fields, inline_schema, parse_body

PATH = "/v1/responses"


async def build_job(
    st: AppState, rid: str, body: dict[str, Any], req: ResponsesRequest, principal: Principal
) -> ChatJob:
    settings = st.settings
    check_fields(body, req.model, settings, RESPONSES_FIELDS)
    extra = req.extra
    plan = allowed_plan(resolve_plan(req.model, extra, st.catalog, settings), principal)
    body.pop("extra", None)  # Orbyt's own field, and it may hold a BYOK key
    record = None
    if req.previous_response_id:
        try:
            record = await store.load(st.redis, req.previous_response_id, principal.key_id)
        except (OSError, RedisError):
            raise redis_unavailable() from None
        if record is None:
            raise not_found(req.previous_response_id, "previous_response_id")
    chat = chat_body(body, plan, settings, record["messages"] if record else [])
    view = responses_view(rid, body, record)
    stream = bool(req.stream)
    job = new_job(st, rid, chat, plan, extra, principal, stream=stream)
    job["kind"] = RESPONSES
    job["responses"] = view
    return job


async def parse_and_build(
    st: AppState, rid: str, raw: bytes, principal: Principal
) -> tuple[ChatJob, Extra | None]:
    body, req = parse_body(raw, ResponsesRequest)
    return await build_job(st, rid, body, req, principal), req.extra


class ResponsesStream:
    """Responses events: DELTA/DONE payloads are rendered events (counted, so a failure
    can number its own events on); an ERROR frame or a broken reply ends with `error` and
    `response.failed`, never `response.completed`."""

    def __init__(self, ex: Exchange, first: Frame) -> None:
        self.view = ex.job["responses"]
        self.model = str((first.meta or {}).get("model") or ex.job["plan"][0]["model"])
        self.seq = 0  # events relayed so far: the next sequence number

    def render(self, frame: Frame) -> bytes:
        if frame.kind == ERROR:
            return failed_events(self.view, self.model, self.seq, _error_of(frame.payload))
        self.seq += count_events(frame.payload)
        return frame.payload

    def broken(self, err: OrbytError) -> bytes:
        return failed_events(self.view, self.model, self.seq, err.body()["error"])


def _error_of(payload: bytes) -> dict[str, Any]:
    try:
        error = orjson.loads(payload).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    return error if isinstance(error, dict) else {"message": "The response failed."}


def openapi_operation() -> dict[str, Any]:
    schema = inline_schema(ResponsesRequest)
    schema["additionalProperties"] = False  # unknown fields are a 400 (RESPONSES_FIELDS)
    return queued_operation(
        "Create a response",
        "OpenAI's Responses API, routed with fallbacks (`extra`); with `stream: true` the "
        "answer is server-sent events.",
        "create_response_v1_responses_post",
        schema,
    )


ENDPOINT = QueuedEndpoint(PATH, parse_and_build, partial(answer, dialect=ResponsesStream))
router = APIRouter()
router.routes.append(Route(PATH, ENDPOINT, methods=["POST"], include_in_schema=False))


async def _record(request: Request, response_id: str) -> tuple[AppState, str, dict[str, Any]]:
    st: AppState = request.app.state.orbyt
    principal = await st.auth.authenticate(request.headers.get("authorization"), limits=False)
    try:
        record = await store.load(st.redis, response_id, principal.key_id)
    except (OSError, RedisError):
        raise redis_unavailable() from None
    if record is None:
        raise not_found(response_id)
    return st, principal.key_id, record


@router.get(PATH + "/{response_id}")
async def get_response(response_id: str, request: Request) -> dict[str, Any]:
    _, _, record = await _record(request, response_id)
    response: dict[str, Any] = record["response"]
    return response


@router.delete(PATH + "/{response_id}")
async def delete_response(response_id: str, request: Request) -> dict[str, Any]:
    st, owner, _ = await _record(request, response_id)
    if not await store.delete(st.redis, response_id, owner):
        raise not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.get(PATH + "/{response_id}/input_items")
async def input_items(response_id: str, request: Request, order: str = "desc") -> dict[str, Any]:
    _, _, record = await _record(request, response_id)
    items: list[dict[str, Any]] = record["input"]
    if order != "asc":
        items = items[::-1]
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }
