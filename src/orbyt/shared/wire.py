"""OpenAI Chat Completions request validation, and Orbyt's `extra` object (DESIGN §3).

The API validates with these models and then forwards the caller's original JSON (minus
nulls), so OpenAI fields Orbyt does not model still reach OpenAI-compatible upstreams.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from orbyt.shared.errors import InvalidRequest

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Message(_Open):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(_Open):
    include_usage: StrictBool | None = None


class Extra(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fallback_models: list[Annotated[str, Field(pattern=r"^[^/\s]+/\S+$")]] = Field(
        default_factory=list, max_length=16
    )
    provider: str | None = None
    retry: Annotated[StrictInt, Field(ge=0, le=10)] | None = None
    byok: str | dict[str, str] | None = None
    timeout: Annotated[float, Field(gt=0, le=3600)] | None = None


class ChatRequest(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None
    n: Annotated[StrictInt, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    response_format: dict[str, Any] | None = None
    seed: StrictInt | None = None
    user: str | None = None
    extra: Extra | None = None


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_chat_request(raw: bytes, max_messages: int) -> tuple[dict[str, Any], ChatRequest]:
    """Validate a request body; returns (the caller's JSON without nulls, the typed view).

    Raises InvalidRequest with `param` naming the offending field. Messages never echo
    input values (a key pasted in the wrong field must not come back in an error)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    body = {k: v for k, v in body.items() if v is not None}
    try:
        request = ChatRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        param = _param(tuple(err["loc"]))
        if err["type"] == "extra_forbidden" and param.startswith("extra."):
            raise InvalidRequest(
                f"Unknown field {param!r} in 'extra'. Valid fields: "
                "fallback_models, provider, retry, byok, timeout.",
                param=param,
                code="unknown_parameter",
            ) from None
        if err["type"] == "missing":
            raise InvalidRequest(
                f"Missing required parameter: {param!r}.",
                param=param,
                code="missing_required_parameter",
            ) from None
        raise InvalidRequest(
            f"Invalid value for {param!r}: {err['msg']}.", param=param, code="invalid_value"
        ) from None
    if len(request.messages) > max_messages:
        raise InvalidRequest(f"Too many messages (at most {max_messages}).", param="messages")
    return body, request


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def chat_request_schema() -> dict[str, Any]:
    """The request body's JSON schema, self-contained (for the OpenAPI document)."""
    schema = ChatRequest.model_json_schema()
    return dict(_inline(schema, schema.get("$defs", {})))
