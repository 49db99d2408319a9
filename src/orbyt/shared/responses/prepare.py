"""A validated Responses body, its plan and its stored history → the job's chat body and
`ResponsesView`. Shared by `POST /v1/responses` (`api.routes.responses`) and batch lines
of endpoint `/v1/responses` (`worker.batchkinds`), so both build the same job.

Tool types other than `function` are accepted only when every route of the plan is OpenAI's
own Responses API (`native_only`); `to_chat` refuses them otherwise (a 400 naming the type).
"""

from __future__ import annotations

import time
from typing import Any

from orbyt.shared.contract import Candidate
from orbyt.shared.errors import NotFound, shown_id
from orbyt.shared.responses.output import ResponsesView
from orbyt.shared.responses.request import echo_fields, native_body, to_chat
from orbyt.shared.settings import Settings

Json = dict[str, Any]


def not_found(response_id: str, param: str | None = None) -> NotFound:
    """A stored response that does not exist, or belongs to another gateway key."""
    return NotFound(
        f"Response with id '{shown_id(response_id)}' not found.",
        param=param,
        code="response_not_found",
    )


def native_only(plan: list[Candidate], settings: Settings) -> bool:
    """Every route is OpenAI's own Responses API: any tool type OpenAI knows may be used."""
    adapter = settings.provider("openai").adapter or "openai"
    return adapter == "openai" and all(c["provider"] == "openai" for c in plan)


def function_tools_only(body: Json) -> Json:
    """The body the chat translation sees when only native routes serve it."""
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    return {**body, "tools": tools}


def chat_body(body: Json, plan: list[Candidate], settings: Settings, history: list[Json]) -> Json:
    """The chat translation of `body` (without `extra`); raises InvalidRequest."""
    return to_chat(function_tools_only(body) if native_only(plan, settings) else body, history)


def responses_view(rid: str, body: Json, record: Json | None) -> ResponsesView:
    """The job's view of the response `resp_{rid}`; `record`: the stored response of its
    `previous_response_id` (None: no chain)."""
    history_items: list[Json] = record.get("items", []) if record else []
    return ResponsesView(
        id=f"resp_{rid}",
        created_at=int(time.time()),
        echo=echo_fields(body),
        store=body.get("store") is not False,
        skip=1 if body.get("instructions") else 0,
        history=len(history_items),
        request=native_body(body, history_items),
    )
