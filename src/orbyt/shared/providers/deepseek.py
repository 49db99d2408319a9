"""DeepSeek chat completions (`POST {base_url}/chat/completions`, Bearer).

DeepSeek is OpenAI-shaped; the differences are handled here.

Request mapping (OpenAI field -> DeepSeek):

- `model`: the upstream id.
- role `developer` -> `system`; role `function` is rejected (`messages[i].role`).
- Parts: `text` as is; `image_url`, `input_audio`, `file` are rejected
  (`messages[i].content[j]`): DeepSeek chat is text-only.
- Assistant `reasoning_content` passes through; an assistant message with `tool_calls`
  and no `reasoning_content` gets `""` (see below). Assistant `refusal`, `annotations`,
  `audio`, `function_call` are dropped.
- `n`: 1 is dropped, anything else rejected (`n`). `seed`: rejected (`seed`); dropping it
  would silently break the reproducibility the caller asked for.
- `reasoning_effort`: `minimal`/`low` -> `low`; `medium`/`high`/`xhigh` -> `high`;
  `max`/`ultra` -> `max`; `none` -> `thinking: {"type": "disabled"}` (unless `thinking`
  is set); any other value is rejected.
- `response_format`: `text`, `json_object` as is; `json_schema` (and anything else) is
  rejected (`response_format.type`) rather than downgraded to unvalidated JSON.
- `stop`: at most 16 (`stop`); `tools`: at most 128 (`tools`).
- `max_completion_tokens` -> `max_tokens` (wins when both are set).
- `stream_options` -> `{"include_usage": true}` on streams (the worker accounts usage),
  dropped otherwise.
- As is: `tool_choice`, `temperature`, `top_p`, penalties, `logprobs`, `top_logprobs`,
  `max_tokens`, `stream`, `thinking` (sent through `extra_body`).
- Dropped: `user`, `safety_identifier`, `logit_bias`, `store`, `metadata`,
  `service_tier`, `verbosity`, `prompt_cache_key` (caching is automatic),
  `parallel_tool_calls`, `prediction`, `modalities: ["text"]`.
- Rejected: `audio`, other `modalities`, `web_search_options`, `functions`,
  `function_call`.
- Anything else passes through.

Reasoning echo: in thinking mode (DeepSeek's default) an assistant message that made tool
calls must come back with its `reasoning_content`, or DeepSeek answers 400. The OpenAI
SDKs keep unknown response fields, so callers who append the returned message object
echo it unchanged. Callers who rebuild history from their own records lose it; for them
an empty string is sent, which satisfies the check (the model then continues without
its earlier reasoning) instead of failing the whole conversation.

Responses: non-stream bodies may start with keep-alive blank lines; streams carry
`: keep-alive` comments (dropped by the SSE decoder) and reasoning deltas with
`"content": null` (the null is not forwarded). `finish_reason`
`insufficient_system_resource` raises a retryable 503 (in a stream, `before_content`
tells the worker whether anything was sent). Usage keeps
`prompt_tokens_details.cached_tokens` (from `prompt_cache_hit_tokens` when missing) and
`completion_tokens_details.reasoning_tokens`; usage riding on a chunk with choices is
split into its own `{"choices": [], "usage": ...}` item.

Errors: OpenAI-shaped. 402 (insufficient balance) -> QUOTA, 401 -> AUTH, 422 -> FINAL,
429/500/503 retryable. The masked key DeepSeek puts in 401 messages is removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

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
    error_fields,
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

PROVIDER = "deepseek"

EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "high",
    "high": "high",
    "xhigh": "high",
    "max": "max",
    "ultra": "max",
}
DROPPED = frozenset(
    {
        "user",
        "safety_identifier",
        "logit_bias",
        "store",
        "metadata",
        "service_tier",
        "verbosity",
        "prompt_cache_key",
        "parallel_tool_calls",
        "prediction",
    }
)
REJECTED = ("audio", "web_search_options", "functions", "function_call")
ASSISTANT_DROPPED = frozenset({"refusal", "annotations", "audio", "function_call"})
ROLES = frozenset({"system", "user", "assistant", "tool"})
RESPONSE_FORMATS = frozenset({"text", "json_object"})
MAX_STOP = 16
MAX_TOOLS = 128
MAX_MESSAGE = 1000

# The masked key of 401 messages (": ****abcd") and anything that looks like a whole key.
MASKED_KEY = re.compile(r":?\s*\*{2,}[A-Za-z0-9_-]*")
WHOLE_KEY = re.compile(r"sk-[A-Za-z0-9_-]{8,}")
CONTEXT_MARKERS = ("maximum context length", "context length exceeded")


# ---------------------------------------------------------------- request


def _reject(param: str, message: str) -> InvalidRequest:
    return reject(PROVIDER, param, message)


def _check_parts(content: Any, where: str) -> None:
    if not isinstance(content, list):
        return
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise _reject(
                f"{where}.content[{j}]",
                "DeepSeek accepts only text content parts (no images, audio or files)",
            )


def _message(msg: Any, i: int) -> Json:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise _reject(where, f"'{where}' must be an object")
    role = "system" if msg.get("role") == "developer" else msg.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _reject(
            f"{where}.role",
            "DeepSeek accepts the roles system, developer, user, assistant and tool",
        )
    _check_parts(msg.get("content"), where)
    out: Json = {k: v for k, v in msg.items() if v is not None or k == "content"}
    out["role"] = role
    if role == "assistant":
        for name in ASSISTANT_DROPPED:
            out.pop(name, None)
        if out.get("tool_calls") and not isinstance(out.get("reasoning_content"), str):
            out["reasoning_content"] = ""
    return out


def _messages(messages: Any) -> list[Json]:
    return [_message(msg, i) for i, msg in enumerate(message_list(PROVIDER, messages))]


def _check_rejected(payload: Json) -> None:
    reject_fields(PROVIDER, "DeepSeek", payload, REJECTED)
    if payload.pop("n", 1) != 1:
        raise _reject("n", "DeepSeek returns a single choice; 'n' must be 1")
    if "seed" in payload:
        raise _reject("seed", "'seed' is not supported by DeepSeek")
    stop = payload.get("stop")
    if isinstance(stop, list) and len(stop) > MAX_STOP:
        raise _reject("stop", f"DeepSeek accepts at most {MAX_STOP} stop sequences")
    tools = payload.get("tools")
    if isinstance(tools, list) and len(tools) > MAX_TOOLS:
        raise _reject("tools", f"DeepSeek accepts at most {MAX_TOOLS} tools")


def _response_format(payload: Json) -> None:
    value = payload.get("response_format")
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in RESPONSE_FORMATS:
        raise _reject(
            "response_format.type",
            "DeepSeek supports response_format types 'text' and 'json_object' only",
        )


def _reasoning_effort(payload: Json) -> None:
    if "reasoning_effort" not in payload:
        return
    effort = payload.pop("reasoning_effort")
    if effort == "none":
        payload.setdefault("thinking", {"type": "disabled"})
    elif isinstance(effort, str) and effort in EFFORTS:
        payload["reasoning_effort"] = EFFORTS[effort]
    else:
        raise _reject(
            "reasoning_effort", "reasoning_effort must be one of none, " + ", ".join(EFFORTS)
        )


def _payload(body: Json, target: Target) -> Json:
    payload = {
        k: v
        for k, v in body.items()
        if k not in GATEWAY_FIELDS and k not in DROPPED and v is not None
    }
    _check_rejected(payload)
    _response_format(payload)
    _reasoning_effort(payload)
    payload["model"] = target.upstream_model
    payload["messages"] = _messages(payload.get("messages"))
    if "max_completion_tokens" in payload:
        payload["max_tokens"] = payload.pop("max_completion_tokens")
    payload.pop("stream_options", None)
    if payload.get("stream"):
        payload["stream_options"] = {"include_usage": True}
    return payload


# ---------------------------------------------------------------- responses


def _usage(raw: Any) -> Json | None:
    if not isinstance(raw, dict) or not raw:
        return None
    prompt, completion = as_int(raw.get("prompt_tokens")), as_int(raw.get("completion_tokens"))
    out: Json = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": as_int(raw.get("total_tokens"), prompt + completion),
    }
    details = raw.get("prompt_tokens_details")
    details = dict(details) if isinstance(details, dict) else {}
    if "cached_tokens" not in details and isinstance(raw.get("prompt_cache_hit_tokens"), int):
        details["cached_tokens"] = raw["prompt_cache_hit_tokens"]
    if details:
        out["prompt_tokens_details"] = details
    if isinstance(raw.get("completion_tokens_details"), dict):
        out["completion_tokens_details"] = raw["completion_tokens_details"]
    return out


def _capacity_error(before_content: bool) -> UpstreamError:
    err = upstream_error(
        503,
        f"{PROVIDER}: generation stopped for lack of capacity "
        "(finish_reason 'insufficient_system_resource')",
        type="server_error",
        code="insufficient_system_resource",
    )
    err.before_content = before_content
    return err


def _response_choice(choice: Any) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    if choice.get("finish_reason") == "insufficient_system_resource":
        raise _capacity_error(True)
    return choice


# ---------------------------------------------------------------- streams


@dataclass(slots=True)
class DeepSeekStreamState(StreamState):
    started: bool = False  # content, reasoning or a tool call was emitted


def _stream_choice(choice: Any, position: int, state: DeepSeekStreamState) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    delta = choice.get("delta")
    delta = {k: v for k, v in delta.items() if v is not None} if isinstance(delta, dict) else {}
    if delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"):
        state.started = True
    finish = choice.get("finish_reason")
    if finish == "insufficient_system_resource":
        raise _capacity_error(not state.started)
    finish = finish if isinstance(finish, str) and finish else None
    if finish:
        state.finish_reason = finish
    return {
        **choice,
        "index": as_int(choice.get("index"), position),
        "delta": delta,
        "finish_reason": finish,
    }


def _stream_error(chunk: Json, state: DeepSeekStreamState) -> UpstreamError:
    message, etype, code, _ = error_fields(chunk)
    status = 503 if etype in (None, "server_error", "overloaded_error") else 400
    err = upstream_error(status, f"{PROVIDER}: {_scrub(message)}", type=etype, code=code)
    err.before_content = not state.started
    return err


def _parse_chunk(data: str, state: DeepSeekStreamState) -> list[Json]:
    chunk = load_chunk(data, state)
    if chunk is None:
        return []
    if chunk.get("error"):
        raise _stream_error(chunk, state)
    choices = chunk_choices(chunk, state)
    if choices is None:
        return []
    out: list[Json] = []
    if choices:
        item: Json = {"choices": [_stream_choice(c, i, state) for i, c in enumerate(choices)]}
        if isinstance(chunk.get("system_fingerprint"), str):
            item["system_fingerprint"] = chunk["system_fingerprint"]
        out.append(item)
    usage = _usage(chunk.get("usage"))
    if usage:
        out.append({"choices": [], "usage": usage})
    return out


# ---------------------------------------------------------------- errors


def _scrub(message: str) -> str:
    """Remove key material: DeepSeek's 401 says "Your api key: ****abcd is invalid"."""
    return WHOLE_KEY.sub("sk-***", MASKED_KEY.sub("", message))[:MAX_MESSAGE]


def _error(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    body = loads_object(raw.strip())
    message, etype, code, param = error_fields(body)
    if body is None:
        message = f"upstream returned HTTP {status}"
    if code == "invalid_request_error":  # DeepSeek's catch-all code says nothing
        code = None
    disposition: Disposition | None = None
    if status == 402:
        etype, code, disposition = "billing_error", "insufficient_quota", Disposition.QUOTA
    elif status == 401:
        code = code or "invalid_api_key"
    elif status == 429:
        code = code or "rate_limit_exceeded"
    elif status == 400 and any(m in message.lower() for m in CONTEXT_MARKERS):
        code, disposition = "context_length_exceeded", Disposition.CONTEXT
    if etype == "unknown_error":
        etype = None
    return upstream_error(
        status,
        f"{PROVIDER}: {_scrub(message)}",
        type=etype,
        code=code,
        param=param,
        retry_after=parse_retry_after(headers),
        disposition=disposition,
    )


# ---------------------------------------------------------------- adapter


class DeepSeekAdapter:
    name: ClassVar[str] = PROVIDER
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__DEEPSEEK__KEYS"
    default_base_url: ClassVar[str] = "https://api.deepseek.com"
    needs_key: ClassVar[bool] = True

    def build_request(self, body: Json, target: Target) -> UpstreamRequest:
        return json_post(
            target.base_url.rstrip("/") + "/chat/completions",
            _payload(body, target),
            target.api_key,
        )

    def parse_response(self, raw: bytes, target: Target) -> Json:
        body = loads_object(raw.strip())  # keep-alive blank lines precede the JSON
        if body is None:
            raise malformed(PROVIDER)
        if body.get("error"):
            raise _stream_error(body, DeepSeekStreamState())
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise malformed(PROVIDER)
        out: Json = {"choices": [_response_choice(c) for c in choices]}
        usage = _usage(body.get("usage"))
        if usage:
            out["usage"] = usage
        if isinstance(body.get("system_fingerprint"), str):
            out["system_fingerprint"] = body["system_fingerprint"]
        return out

    def new_stream_state(self, body: Json, target: Target) -> StreamState:
        return DeepSeekStreamState()

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[Json]:
        data = event.data.strip()
        if not data:  # keep-alive: blank data is skipped
            return []
        if data.startswith("[DONE]"):
            state.done = True
            return []
        if not isinstance(state, DeepSeekStreamState):
            raise TypeError("parse_event needs the state from new_stream_state")
        return _parse_chunk(data, state)

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return _error(status, headers, raw)


ADAPTER = DeepSeekAdapter()
