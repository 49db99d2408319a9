"""OpenAI chat body -> DeepSeek chat request. Pure; the mapping table is in
`shared.providers.deepseek`."""

from __future__ import annotations

from typing import Any

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.base import Json, Target
from orbyt.shared.providers.deepseek.errors import PROVIDER
from orbyt.shared.providers.openai.request import (
    GATEWAY_FIELDS,
    message_list,
    reject,
    reject_fields,
)

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


def payload(body: Json, target: Target) -> Json:
    """The DeepSeek request body (see the mapping table)."""
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
