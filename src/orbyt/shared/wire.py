"""OpenAI Chat Completions request validation, and Orbyt's `extra` object (DESIGN §3).

The API validates with these models and then forwards the caller's original JSON (minus
nulls), so OpenAI fields Orbyt does not model still reach OpenAI-compatible upstreams.
Before anything else sees a request it is held to three limits (issue 10):
- nesting depth (`MAX_JSON_DEPTH`), so that every later step can carry it;
- model ids of printable ASCII only, so that none can break a header or a URL;
- top-level fields that OpenAI's API knows (`CHAT_FIELDS`), plus those the primary
  provider takes (`NATIVE_FIELDS`, `ProviderConfig.extra_fields`): a key pasted into a
  misspelled field is refused, not forwarded upstream and written into the queued job.
A field name is only repeated in an error when it cannot be a key (`_shown`).
This module is a little over 300 lines: the three limits belong with the parser.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.settings import Settings

ModelT = TypeVar("ModelT", bound=BaseModel)
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]

# Containers nested in one request body, the body itself counting as 1. The queued job
# wraps the body in 3 more levels and an adapter's payload nests it at most 2 deeper,
# while orjson, which encodes both, stops at 255: 128 leaves that margin twice over and
# is far beyond any real schema (OpenAI's structured outputs allow 10 levels).
MAX_JSON_DEPTH = 128
MAX_MODEL_ID = 256
# Printable ASCII without spaces: a model id is safe in a header value and a URL path.
MODEL_ID = r"^[!-~]+$"
FALLBACK_ID = r"^[!-.0-~]+/[!-~]+$"  # provider/model, the provider without a "/"
_SCAN_TOKENS = 50_000  # bound on the raw scan that names a field nested past 1024 levels
_DEPTH_ERROR = "depth limit"  # orjson's message for JSON nested past 1024 levels
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]')  # strings, structure

# fmt: off
# Every top-level parameter of OpenAI's Chat Completions API (the openai SDK's
# `CompletionCreateParams`, 3.57), and Orbyt's own `extra`.
CHAT_FIELDS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
        "modalities", "moderation", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier",
        "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
        "web_search_options", "extra",
    }
)
# Fields of a provider's own API that its adapter passes through as they are.
NATIVE_FIELDS: dict[str, frozenset[str]] = {
    "mistral": frozenset(
        {
            "random_seed", "prompt_mode", "safe_prompt", "guardrails", "min_tokens", "top_k",
            "repetition_penalty", "prompt_logprobs", "top_prompt_logprobs",
        }
    ),
    "deepseek": frozenset({"thinking"}),
}
# fmt: on


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

    fallback_models: list[Annotated[str, Field(max_length=MAX_MODEL_ID, pattern=FALLBACK_ID)]] = (
        Field(default_factory=list, max_length=16)
    )
    provider: str | None = None
    retry: Annotated[StrictInt, Field(ge=0, le=10)] | None = None
    byok: str | dict[str, str] | None = None
    timeout: Annotated[float, Field(gt=0, le=3600)] | None = None


class ChatRequest(_Open):
    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_ID, pattern=MODEL_ID)]
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


# ------------------------------------------------------------------------ field names
_SHORT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,19}")
_SNAKE_NAME = re.compile(r"[a-z][a-z0-9]{0,15}(?:_[a-z0-9]{1,16}){1,6}")


def _shown(name: str) -> bool:
    """Whether a caller's field name may be repeated in an error: short (no 24-character
    fragment of a key fits), or snake_case words, which no key looks like."""
    return bool(_SHORT_NAME.fullmatch(name) or _SNAKE_NAME.fullmatch(name))


def _param(loc: tuple[int | str, ...] | list[int | str], limit: int = 6) -> str:
    """`a.b[0].c`: the path up to `limit` segments, cut before the first name not shown."""
    out = ""
    for part in loc[:limit]:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _shown(part):
            out += f".{part}" if out else part
        else:
            break
    return out


# ------------------------------------------------------------------------------ depth
def _deep_path(node: Any, room: int) -> list[int | str] | None:
    """The path (innermost first) to a container with no `room` left, or None."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    if room <= 0:
        return []
    for key, child in items:
        if isinstance(child, dict | list):
            found = _deep_path(child, room - 1)
            if found is not None:
                found.append(key)
                return found
    return None


def _embedded_json(body: dict[str, Any]) -> Iterator[tuple[list[int | str], str]]:
    """Strings adapters decode as JSON: tool call arguments, tool results."""
    messages = body.get("messages")
    for i, msg in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(msg, dict):
            continue
        if msg.get("role") == "tool" and isinstance(msg.get("content"), str):
            yield ["messages", i, "content"], msg["content"]
        calls = msg.get("tool_calls")
        for j, call in enumerate(calls if isinstance(calls, list) else []):
            fn = call.get("function") if isinstance(call, dict) else None
            args = fn.get("arguments") if isinstance(fn, dict) else None
            if isinstance(args, str):
                yield ["messages", i, "tool_calls", j, "function", "arguments"], args


def _too_deep(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid '{param or 'body'}': JSON nested deeper than {MAX_JSON_DEPTH} levels.",
        param=param or None,
        code="invalid_value",
    )


def check_depth(body: dict[str, Any]) -> None:
    """Raise InvalidRequest naming the field if `body` nests deeper than MAX_JSON_DEPTH."""
    found = _deep_path(body, MAX_JSON_DEPTH)
    if found is not None:
        raise _too_deep(_param(found[::-1]))
    for path, text in _embedded_json(body):
        room = MAX_JSON_DEPTH - len(path)
        if text.count("{") + text.count("[") <= room:
            continue  # cannot nest that deep: not worth decoding
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if _DEPTH_ERROR in exc.msg:
                raise _too_deep(_param(path)) from None
            continue  # not JSON: the adapter's own concern
        if _deep_path(value, room) is not None:
            raise _too_deep(_param(path))


def _known(path: list[int | str | None]) -> list[int | str]:
    """The path up to its first unknown key."""
    out: list[int | str] = []
    for part in path:
        if part is None:
            break
        out.append(part)
    return out


def _key(token: bytes) -> str | None:
    try:
        key = orjson.loads(token)
    except orjson.JSONDecodeError:
        return None
    return key if isinstance(key, str) else None


def _raw_deep_path(raw: bytes) -> list[int | str] | None:
    """The path to the first container nested past MAX_JSON_DEPTH, from the raw bytes
    (for bodies orjson refuses); None if the scan gives up (bounded work)."""
    path: list[int | str | None] = []  # per open container: its current key or index
    last = b'""'
    for n, match in enumerate(_TOKEN.finditer(raw)):
        tok = match.group()
        if n > _SCAN_TOKENS:
            return None
        if tok[:1] == b'"':
            last = tok
        elif tok in (b"{", b"["):
            if len(path) >= MAX_JSON_DEPTH:
                return _known(path)
            path.append(0 if tok == b"[" else None)
        elif tok in (b"}", b"]"):
            if path:
                path.pop()
        elif tok == b":" and path:
            path[-1] = _key(last)
        elif tok == b"," and path and isinstance(path[-1], int):
            path[-1] += 1
    return None


# ------------------------------------------------------------------------- model ids
def _model_message(param: str) -> str:
    shape = "'provider/model'" if param.startswith("extra.") else "a model id"
    return (
        f"Invalid '{param}': {shape} of 1 to {MAX_MODEL_ID} printable ASCII characters "
        "without spaces is expected, e.g. 'openai/gpt-5-mini'."
    )


def _is_model_id(param: str) -> bool:
    return param == "model" or param.startswith("extra.fallback_models[")


_STRING_CHECKS = ("string_pattern_mismatch", "string_too_long", "string_too_short")


# ----------------------------------------------------------------------------- parse
def _loads(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if _DEPTH_ERROR in exc.msg:
            path = _raw_deep_path(raw)
            raise _too_deep(_param(path) if path else "") from None
        raise InvalidRequest("Request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    return body


def _invalid(err: Any) -> InvalidRequest:
    """The InvalidRequest for pydantic's first error; never quotes the input."""
    param = _param(tuple(err["loc"]), limit=len(err["loc"])) or "body"
    if err["type"] == "extra_forbidden" and param.startswith("extra."):
        return InvalidRequest(
            f"Unknown field {param!r} in 'extra'. Valid fields: "
            "fallback_models, provider, retry, byok, timeout.",
            param=param,
            code="unknown_parameter",
        )
    if err["type"] == "missing":
        return InvalidRequest(
            f"Missing required parameter: {param!r}.",
            param=param,
            code="missing_required_parameter",
        )
    if err["type"] in _STRING_CHECKS and _is_model_id(param):
        return InvalidRequest(_model_message(param), param=param, code="invalid_value")
    return InvalidRequest(
        f"Invalid value for {param!r}: {err['msg']}.", param=param, code="invalid_value"
    )


def parse_body(raw: bytes, model: type[ModelT]) -> tuple[dict[str, Any], ModelT]:
    """Validate a request body against `model`; returns (the caller's JSON without nulls,
    the typed view). Raises InvalidRequest with `param` naming the offending field; the
    message never echoes input values (a key pasted in the wrong field must not come back
    in an error)."""
    body = {k: v for k, v in _loads(raw).items() if v is not None}
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:  # else it cannot nest too deep
        check_depth(body)
    try:
        request = model.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc.errors(include_input=False, include_url=False)[0]) from None
    return body, request


def parse_chat_request(raw: bytes, max_messages: int) -> tuple[dict[str, Any], ChatRequest]:
    """Validate a chat request body (`parse_body`), and its number of messages."""
    body, request = parse_body(raw, ChatRequest)
    if len(request.messages) > max_messages:
        raise InvalidRequest(f"Too many messages (at most {max_messages}).", param="messages")
    return body, request


# ---------------------------------------------------------------------- unknown fields
def allowed_fields(model: str, settings: Settings) -> frozenset[str]:
    """Top-level fields a request for `model` may carry: OpenAI's, and those its
    provider's adapter passes through or the operator allowed for it."""
    provider = model.partition("/")[0]
    cfg = settings.provider(provider)
    native = NATIVE_FIELDS.get(cfg.adapter or provider, frozenset())
    return CHAT_FIELDS | native | frozenset(cfg.extra_fields)


def _hint(name: str, allowed: frozenset[str]) -> str:
    lowered = name.lower()
    if lowered.startswith(("extra", "orbyt")) or difflib.get_close_matches(
        lowered, ["extra"], n=1, cutoff=0.6
    ):
        return " Did you mean `extra`?"
    close = difflib.get_close_matches(lowered, sorted(allowed), n=1, cutoff=0.8)
    return f" Did you mean `{close[0]}`?" if close else ""


def check_fields(
    body: Mapping[str, Any], model: str, settings: Settings, known: frozenset[str] = CHAT_FIELDS
) -> None:
    """Refuse a top-level field that neither OpenAI's API (`known`: its chat fields by
    default) nor the primary provider knows, as OpenAI does ("Unrecognized request argument
    supplied"), with a hint for near-misses of `extra`. An unknown field is never forwarded
    upstream nor written into the job."""
    for name in body:
        if name in known:
            continue
        allowed = (allowed_fields(model, settings) - CHAT_FIELDS) | known
        if name in allowed:
            continue
        if not _shown(name):
            raise InvalidRequest(
                "Unrecognized request argument supplied (its name looks like a key, so it is "
                "not repeated here).",
                code="unknown_parameter",
            )
        raise InvalidRequest(
            f"Unrecognized request argument supplied: {name}.{_hint(name, allowed)}",
            param=name,
            code="unknown_parameter",
        )


# ---------------------------------------------------------------------------- schema
def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with every `$ref` inlined: self-contained, so it can sit
    anywhere in the OpenAPI document (its `$defs` would not resolve there)."""
    schema = model.model_json_schema()
    return dict(_inline(schema, schema.get("$defs", {})))


def chat_request_schema() -> dict[str, Any]:
    """The request body's JSON schema, self-contained (for the OpenAPI document)."""
    return inline_schema(ChatRequest)
