"""Mistral La Plateforme chat completions (`POST {base_url}/v1/chat/completions`, Bearer).

Mistral speaks a near-OpenAI dialect but validates strictly (unknown fields are a 422).

Request mapping (OpenAI field -> Mistral):

- `model`: the upstream id.
- role `developer` -> `system`; role `function` is rejected (`messages[i].role`).
- Message fields Mistral does not know are dropped: `name` on system/user/assistant
  messages, assistant `refusal`, `annotations`, `audio`, `function_call` and
  `reasoning_content` (Mistral forbids extra fields).
- `tool_calls[].id` and `tool_call_id`: kept when they match `[a-zA-Z0-9]{9}`, otherwise
  rewritten to 9 base62 chars of SHA-256(id) in both places, so the pairs still match.
- Parts: `text`, `image_url` as is; `input_audio {data, format}` -> `input_audio: data`;
  `file {file_id}` -> `file_id` (`file_data` is rejected).
- `seed` -> `random_seed`; `max_completion_tokens` -> `max_tokens` (wins when both set).
- `tool_choice: "required"` -> `"any"` (every Mistral API version accepts `any`;
  `required` is a newer alias).
- As is: `n`, `stop`, `tools`, `tool_choice` (other values), `parallel_tool_calls`,
  `response_format`, `reasoning_effort`, `prediction`, `prompt_cache_key`, `metadata`,
  `logprobs`, `top_logprobs`, `temperature`, `top_p`, penalties, `max_tokens`, `stream`.
- Dropped: `user`, `safety_identifier`, `logit_bias`, `stream_options` (usage always
  rides on the finish chunk), `store`, `service_tier` (different tiers), `verbosity`,
  `modalities: ["text"]`.
- Rejected (`InvalidRequest`, param = the field): `audio`, other `modalities`,
  `web_search_options`, `functions`, `function_call`.
- Anything else (`safe_prompt`, `top_k`, `min_tokens`, `prompt_mode`, ...) passes through.

Responses: a `content` list of chunks (Magistral) is flattened: text chunks become
`content`, thinking chunks `reasoning_content`. `finish_reason` `model_length` becomes
`length`; `error` raises a retryable 502 (in a stream too). Tool-call `arguments` that
arrive as an object are JSON-encoded. Streams carry `usage` on the finish chunk; it is
split off into a separate `{"choices": [], "usage": ...}` item. Each streamed tool call
(whole, with an `id`) gets the next OpenAI `index` of its choice, `type: "function"` and
an `id`.

Errors: Mistral's flat `{"object": "error", "message", "type", "code", "raw_status_code"}`
body, FastAPI's 422 `{"detail": [...]}` (never echoing `input`) and non-JSON bodies all
become an `UpstreamError` whose message starts with "mistral: ".
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from orbyt.shared.errors import (
    Disposition,
    InvalidRequest,
    UpstreamError,
    parse_retry_after,
    upstream_error,
)
from orbyt.shared.providers._openai_compat import (
    GATEWAY_FIELDS,
    as_int,
    chunk_choices,
    json_post,
    load_chunk,
    loads_object,
    malformed,
    message_list,
    reject,
    reject_fields,
)
from orbyt.shared.providers.base import Json, StreamState, Target, UpstreamRequest
from orbyt.shared.sse import SSEEvent

PROVIDER = "mistral"

TOOL_ID = re.compile(r"[A-Za-z0-9]{9}")
_BASE62 = string.digits + string.ascii_letters

DROPPED = frozenset(
    {
        "user",
        "safety_identifier",
        "logit_bias",
        "stream_options",
        "store",
        "service_tier",
        "verbosity",
    }
)
REJECTED = ("audio", "web_search_options", "functions", "function_call")

# Fields Mistral accepts per message role (it rejects any other).
MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_calls", "prefix"}),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}

CONTEXT_MARKERS = ("too large for model", "exceeds the context", "maximum context length")
RATE_LIMIT_TYPES = frozenset({"rate_limited", "rate_limit_error"})
OPENAI_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "rate_limit_error",
        "server_error",
    }
)
MAX_MESSAGE = 1000


# ---------------------------------------------------------------- request


def mistral_tool_id(original: str) -> str:
    """A Mistral-valid tool-call id: `original` if it already is, else 9 base62 chars of
    its SHA-256 (deterministic, so an assistant call and its tool result still match)."""
    if TOOL_ID.fullmatch(original):
        return original
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(9):
        number, rest = divmod(number, 62)
        chars.append(_BASE62[rest])
    return "".join(chars)


def _reject(param: str, message: str) -> InvalidRequest:
    return reject(PROVIDER, param, message)


def _tool_id(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise _reject(param, f"'{param}' must be a non-empty string")
    return mistral_tool_id(value)


def _tool_calls(calls: Any, param: str) -> list[Json]:
    if not isinstance(calls, list):
        raise _reject(param, f"'{param}' must be a list")
    out: list[Json] = []
    for j, call in enumerate(calls):
        where = f"{param}[{j}]"
        if not isinstance(call, dict):
            raise _reject(where, f"'{where}' must be an object")
        item: Json = {"id": _tool_id(call.get("id"), f"{where}.id"), "type": "function"}
        if "function" in call:
            item["function"] = call["function"]
        out.append(item)
    return out


def _part(part: Any, param: str) -> Any:
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "input_audio" and isinstance(part.get("input_audio"), dict):
        data = part["input_audio"].get("data")
        if not isinstance(data, str):
            raise _reject(f"{param}.input_audio.data", "input_audio needs base64 'data'")
        return {"type": "input_audio", "input_audio": data}
    if kind == "file" and isinstance(part.get("file"), dict):
        file_id = part["file"].get("file_id")
        if not isinstance(file_id, str):
            raise _reject(f"{param}.file", "Mistral accepts file parts by 'file_id' only")
        return {"type": "file", "file_id": file_id}
    return part


def _content(content: Any, param: str) -> Any:
    if isinstance(content, list):
        return [_part(part, f"{param}[{j}]") for j, part in enumerate(content)]
    return content


def _message(msg: Any, i: int) -> Json:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise _reject(where, f"'{where}' must be an object")
    role = "system" if msg.get("role") == "developer" else msg.get("role")
    if not isinstance(role, str) or role not in MESSAGE_FIELDS:
        raise _reject(
            f"{where}.role", "Mistral accepts the roles system, developer, user, assistant and tool"
        )
    allowed = MESSAGE_FIELDS[role]
    out: Json = {k: v for k, v in msg.items() if k in allowed and (v is not None or k == "content")}
    out["role"] = role
    if "content" in out:
        out["content"] = _content(out["content"], f"{where}.content")
    if "tool_calls" in out:
        out["tool_calls"] = _tool_calls(out["tool_calls"], f"{where}.tool_calls")
    if "tool_call_id" in out:
        out["tool_call_id"] = _tool_id(out["tool_call_id"], f"{where}.tool_call_id")
    return out


def _messages(messages: Any) -> list[Json]:
    return [_message(msg, i) for i, msg in enumerate(message_list(PROVIDER, messages))]


def _check_rejected(payload: Json) -> None:
    reject_fields(PROVIDER, "Mistral", payload, REJECTED)


def _payload(body: Json, target: Target) -> Json:
    payload = {
        k: v
        for k, v in body.items()
        if k not in GATEWAY_FIELDS and k not in DROPPED and v is not None
    }
    _check_rejected(payload)
    payload["model"] = target.upstream_model
    payload["messages"] = _messages(payload.get("messages"))
    if "seed" in payload:
        payload.setdefault("random_seed", payload["seed"])
        del payload["seed"]
    if "max_completion_tokens" in payload:
        payload["max_tokens"] = payload.pop("max_completion_tokens")
    if payload.get("tool_choice") == "required":
        payload["tool_choice"] = "any"
    prediction = payload.get("prediction")
    if isinstance(prediction, dict) and isinstance(prediction.get("content"), list):
        text = "".join(
            p.get("text", "")
            for p in prediction["content"]
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
        payload["prediction"] = {**prediction, "content": text}  # Mistral takes a string
    return payload


def _url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


# ---------------------------------------------------------------- responses


def _usage(raw: Any) -> Json | None:
    if not isinstance(raw, dict) or not raw:
        return None
    prompt, completion = as_int(raw.get("prompt_tokens")), as_int(raw.get("completion_tokens"))
    total = raw.get("total_tokens")
    out: Json = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": as_int(total) if "total_tokens" in raw else prompt + completion,
    }
    for key in ("prompt_tokens_details", "completion_tokens_details"):
        if isinstance(raw.get(key), dict):
            out[key] = raw[key]
    return out


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    return [
        c["text"]
        for c in value
        if isinstance(c, dict)
        and c.get("type", "text") == "text"
        and isinstance(c.get("text"), str)
    ]


def _flatten(content: Any) -> tuple[str | None, str | None]:
    """(text, thinking) of a Mistral `content`: a string or a list of chunks."""
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        return None, None
    text: list[str] = []
    thinking: list[str] = []
    for chunk in content:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("type") == "text" and isinstance(chunk.get("text"), str):
            text.append(chunk["text"])
        elif chunk.get("type") == "thinking":
            thinking.extend(_texts(chunk.get("thinking")))
    return ("".join(text) if text else None), ("".join(thinking) if thinking else None)


def _arguments(value: Any, missing: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return missing
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: not JSON-encodable, keep some text
        return str(value)


def _function(call: Json, missing: str = "{}") -> Json:
    """OpenAI's `function` of a tool call: `arguments` always a JSON string (`missing` when
    absent: "{}" for a whole call, "" for a continuation fragment)."""
    fn = call.get("function")
    fn = fn if isinstance(fn, dict) else {}
    out: Json = {"arguments": _arguments(fn.get("arguments"), missing)}
    if isinstance(fn.get("name"), str):
        out = {"name": fn["name"], **out}
    return out


def _finish(reason: Any, state: StreamState | None = None) -> str | None:
    if not isinstance(reason, str) or not reason:
        return None
    if reason == "model_length":
        return "length"
    if reason == "error":
        err = upstream_error(
            502,
            f"{PROVIDER}: the model failed while generating (finish_reason 'error')",
            type="server_error",
            code="upstream_generation_error",
        )
        if isinstance(state, MistralStreamState):
            err.before_content = not state.started
        raise err
    return reason


def _response_tool_calls(calls: Any, choice: int) -> list[Json]:
    out: list[Json] = []
    for j, call in enumerate(calls if isinstance(calls, list) else []):
        if not isinstance(call, dict):
            continue
        fn = _function(call)
        out.append({"id": _call_id(call, choice, j, fn), "type": "function", "function": fn})
    return out


def _call_id(call: Json, choice: int, position: int, fn: Json) -> str:
    value = call.get("id")
    if isinstance(value, str) and value and value != "null":
        return value
    return mistral_tool_id(f"{choice}:{position}:{fn.get('name')}")


def _response_choice(choice: Any, position: int) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    finish = _finish(choice.get("finish_reason"))
    index = as_int(choice.get("index"), position)
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text, thinking = _flatten(message.get("content"))
    calls = _response_tool_calls(message.get("tool_calls"), index)
    out: Json = {"role": "assistant", "content": text or (None if calls else "")}
    if thinking:
        out["reasoning_content"] = thinking
    if calls:
        out["tool_calls"] = calls
    return {
        "index": index,
        "message": out,
        "finish_reason": finish,
        "logprobs": choice.get("logprobs"),
    }


# ---------------------------------------------------------------- streams


@dataclass(slots=True)
class MistralStreamState(StreamState):
    started: bool = False  # content, reasoning or a tool call was emitted
    next_tool: dict[int, int] = field(default_factory=dict)  # choice -> next OpenAI index
    tool_map: dict[tuple[int, Any], int] = field(default_factory=dict)  # upstream -> ours


def _stream_tool_call(call: Json, choice: int, state: MistralStreamState) -> Json:
    fn = _function(call)
    upstream = call.get("index")
    upstream = upstream if isinstance(upstream, int) else None
    new_call = bool(call.get("id")) or "name" in fn
    if new_call or (choice, upstream) not in state.tool_map:
        index = state.next_tool.get(choice, 0)
        state.next_tool[choice] = index + 1
        state.tool_map[(choice, upstream)] = index
    else:
        return {"index": state.tool_map[(choice, upstream)], "function": _function(call, "")}
    fn.setdefault("name", "")
    return {
        "index": index,
        "id": _call_id(call, choice, index, fn),
        "type": "function",
        "function": fn,
    }


def _stream_choice(choice: Any, state: MistralStreamState) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    index = as_int(choice.get("index"))
    delta = choice.get("delta")
    delta = delta if isinstance(delta, dict) else {}
    finish = _finish(choice.get("finish_reason"), state)
    out: Json = {}
    if isinstance(delta.get("role"), str):
        out["role"] = delta["role"]
    text, thinking = _flatten(delta.get("content"))
    if text is not None:
        out["content"] = text
    if thinking:
        out["reasoning_content"] = thinking
    calls = delta.get("tool_calls")
    if isinstance(calls, list) and calls:
        out["tool_calls"] = [
            _stream_tool_call(c, index, state) for c in calls if isinstance(c, dict)
        ]
    state.started = state.started or bool(text or thinking or out.get("tool_calls"))
    if finish:
        state.finish_reason = finish
    result: Json = {"index": index, "delta": out, "finish_reason": finish}
    if "logprobs" in choice:
        result["logprobs"] = choice["logprobs"]
    return result


def _stream_error(chunk: Json, state: MistralStreamState) -> UpstreamError:
    err = _error_from_body(502, chunk, {})
    err.before_content = not state.started
    return err


def _parse_chunk(data: str, state: MistralStreamState) -> list[Json]:
    chunk = load_chunk(data, state)
    if chunk is None:
        return []
    if chunk.get("object") == "error" or chunk.get("error"):
        raise _stream_error(chunk, state)
    choices = chunk_choices(chunk, state)
    if choices is None:
        return []
    out: list[Json] = []
    if choices:
        out.append({"choices": [_stream_choice(c, state) for c in choices]})
    usage = _usage(chunk.get("usage"))
    if usage:
        out.append({"choices": [], "usage": usage})
    return out


# ---------------------------------------------------------------- errors


def _param(loc: Any) -> str | None:
    if not isinstance(loc, list):
        return None
    out = ""
    for part in loc[1:] if loc[:1] == ["body"] else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _detail(detail: Any) -> tuple[str, str | None]:
    """Message and param of a FastAPI `detail` (a string, or a list of {loc, msg, type})."""
    if isinstance(detail, str):
        return detail, None
    parts: list[str] = []
    first: str | None = None
    for item in detail[:5] if isinstance(detail, list) else []:
        if not isinstance(item, dict):
            continue
        where = _param(item.get("loc"))
        msg = str(item.get("msg") or item.get("type") or "invalid value")
        parts.append(f"{where}: {msg}" if where else msg)
        first = first or where
    return "; ".join(parts) or "invalid request", first


def _fields(body: Json | None) -> tuple[str, str | None, Any, str | None, Any]:
    """(message, type, code, param, raw_status_code) of any Mistral error body."""
    if body is None:
        return "", None, None, None, None
    source: Json = body["error"] if isinstance(body.get("error"), dict) else body
    message: Any = source.get("message")
    param = source.get("param") if isinstance(source.get("param"), str) else None
    if isinstance(message, dict) and "detail" in message:
        message, param = _detail(message["detail"])
    elif message is None and "detail" in source:
        message, param = _detail(source["detail"])
    elif message is None and isinstance(body.get("error"), str):
        message = body["error"]
    etype = source.get("type") if isinstance(source.get("type"), str) else None
    return str(message or ""), etype, source.get("code"), param, source.get("raw_status_code")


def _error_from_body(status: int, body: Json | None, headers: Mapping[str, str]) -> UpstreamError:
    message, etype, code, param, raw_status = _fields(body)
    message = (message or f"upstream returned HTTP {status}")[:MAX_MESSAGE]
    code = str(code) if isinstance(code, (str, int)) and not isinstance(code, bool) else None
    disposition: Disposition | None = None
    if etype in RATE_LIMIT_TYPES:
        status, etype, code = 429, "rate_limit_error", code or "rate_limit_exceeded"
    elif isinstance(raw_status, int) and 500 <= raw_status <= 599:
        disposition = Disposition.RETRY
        status = status if status >= 500 else raw_status
    if any(marker in message.lower() for marker in CONTEXT_MARKERS):
        code, disposition = "context_length_exceeded", Disposition.CONTEXT
    if etype == "invalid_function_call":
        etype = "invalid_request_error"
    return upstream_error(
        status,
        f"{PROVIDER}: {message}",
        type=etype if etype in OPENAI_TYPES else None,
        code=code,
        param=param,
        retry_after=parse_retry_after(headers),
        disposition=disposition,
    )


# ---------------------------------------------------------------- adapter


class MistralAdapter:
    name: ClassVar[str] = PROVIDER
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__MISTRAL__KEYS"
    default_base_url: ClassVar[str] = "https://api.mistral.ai"
    needs_key: ClassVar[bool] = True

    def build_request(self, body: Json, target: Target) -> UpstreamRequest:
        return json_post(_url(target.base_url), _payload(body, target), target.api_key)

    def parse_response(self, raw: bytes, target: Target) -> Json:
        body = loads_object(raw.strip())
        if body is None:
            raise malformed(PROVIDER)
        if body.get("object") == "error" or body.get("error"):
            raise _error_from_body(502, body, {})
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise malformed(PROVIDER)
        out: Json = {"choices": [_response_choice(c, i) for i, c in enumerate(choices)]}
        usage = _usage(body.get("usage"))
        if usage:
            out["usage"] = usage
        return out

    def new_stream_state(self, body: Json, target: Target) -> StreamState:
        return MistralStreamState()

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[Json]:
        data = event.data.strip()
        if not data:
            return []
        if data.startswith("[DONE]"):
            state.done = True
            return []
        if not isinstance(state, MistralStreamState):
            raise TypeError("parse_event needs the state from new_stream_state")
        return _parse_chunk(data, state)

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return _error_from_body(status, loads_object(raw.strip()), headers)


ADAPTER = MistralAdapter()
