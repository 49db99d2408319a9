"""OpenAI chat request -> Anthropic Messages request. Pure; the mapping table is in
`shared.providers.anthropic`, the message translation in `anthropic.messages`."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.anthropic.messages import (
    LEGACY_FUNCTIONS,
    Conversation,
    translate_messages,
)
from orbyt.shared.providers.base import Json, Target, UpstreamRequest

API_VERSION = "2023-06-01"

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024  # Anthropic's floor for thinking.budget_tokens
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}
JSON_OBJECT_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: "
    "no prose before or after it and no code fences."
)
# Claude model ids of the current scheme: claude-<family>-<major>[-<minor>][-<date>].
_CLAUDE_VERSION = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?")
# OpenAI fields whose effect cannot be reproduced, so silently dropping them would mislead.
REJECTED_FIELDS = {
    "functions": "legacy 'functions' are not supported by anthropic; use 'tools'.",
    "function_call": LEGACY_FUNCTIONS,
    "audio": "audio output is not supported by anthropic.",
    "web_search_options": "web_search_options is not supported by anthropic.",
}


def default_sampling_only(model: str) -> bool:
    """Claude 4.7 and later accept only the default sampling values (PROVIDERS.md §2)."""
    match = _CLAUDE_VERSION.fullmatch(model)
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2) or 0)) >= (4, 7)


def build_request(body: Json, target: Target) -> UpstreamRequest:
    """The HTTP request for an OpenAI chat body: JSON, `x-api-key`, pinned API version."""
    payload = {
        "model": target.upstream_model,
        **build_payload(body, target.max_output_tokens, target.upstream_model),
    }
    try:
        raw = orjson.dumps(payload)
    except TypeError:  # e.g. an integer beyond 64 bits somewhere in a schema
        raise InvalidRequest(
            "The request contains values that cannot be sent to anthropic as JSON."
        ) from None
    stream = payload.get("stream") is True
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "anthropic-version": API_VERSION,
    }
    if target.api_key:
        headers["x-api-key"] = target.api_key.reveal()
    return UpstreamRequest(
        method="POST",
        url=messages_url(target.base_url),
        headers=headers,
        body=raw,
        stream=stream,
    )


def messages_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def build_payload(body: Json, default_max_tokens: int | None, model: str = "") -> Json:
    """The Anthropic request body (without `model`) for an OpenAI chat body."""
    for name, reason in REJECTED_FIELDS.items():
        if body.get(name) is not None:
            raise InvalidRequest(reason, param=name, code="unsupported_parameter")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise InvalidRequest(
            REJECTED_FIELDS["audio"], param="modalities", code="unsupported_parameter"
        )
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest(
            "anthropic returns one choice per request; 'n' must be 1.",
            param="n",
            code="unsupported_parameter",
        )
    conv = translate_messages(body.get("messages"))
    payload: Json = {"messages": conv.messages, "max_tokens": _max_tokens(body, default_max_tokens)}
    _add_tools(payload, body)
    forced = payload.get("tool_choice", {}).get("type") in ("any", "tool")
    thinking = _thinking(body, conv, payload["max_tokens"], forced)
    if thinking is not None:
        payload["thinking"] = thinking
    elif not default_sampling_only(model):
        _add_sampling(payload, body)
    stop = _stop_sequences(body.get("stop"))
    if stop:
        payload["stop_sequences"] = stop
    system = conv.system + _response_format(payload, body.get("response_format"))
    if system:
        payload["system"] = "\n\n".join(system)
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        payload["metadata"] = {"user_id": user}
    if body.get("stream") is True:
        payload["stream"] = True
    return payload


def _max_tokens(body: Json, default: int | None) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)
        return value
    return default or DEFAULT_MAX_TOKENS


def _add_sampling(payload: Json, body: Json) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            raise InvalidRequest(f"'{name}' must be a number.", param=name)
        payload[name] = min(max(float(value), 0.0), 1.0)  # OpenAI allows 0-2, Anthropic 0-1


def _stop_sequences(stop: Any) -> list[str]:
    if stop is None:
        return []
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise InvalidRequest("'stop' must be a string or an array of strings.", param="stop")
    return [s for s in items if s]


def _add_tools(payload: Json, body: Json) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.", param="tools")
    if tools:
        payload["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"), bool(tools))
    if body.get("parallel_tool_calls") is False and tools:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        payload["tool_choice"] = choice


def _tool(tool: Any, p: str) -> Json:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise InvalidRequest("anthropic supports function tools only.", param=p)
    fn = tool.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise InvalidRequest("A tool needs 'function.name'.", param=f"{p}.function.name")
    schema = fn.get("parameters")
    if schema is None:
        schema = {"type": "object", "properties": {}}
    elif not isinstance(schema, dict):
        raise InvalidRequest(
            "'parameters' must be a JSON schema object.", param=f"{p}.function.parameters"
        )
    out: Json = {"name": fn["name"], "input_schema": schema}
    if isinstance(fn.get("description"), str) and fn["description"]:
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: Any, has_tools: bool) -> Json | None:
    if choice is None:
        return None
    simple = {"auto": "auto", "required": "any", "none": "none"}
    if isinstance(choice, str) and choice in simple:
        out: Json = {"type": simple[choice]}
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
        and isinstance(choice["function"].get("name"), str)
    ):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequest(
            "'tool_choice' must be 'auto', 'required', 'none' or a named function.",
            param="tool_choice",
        )
    if has_tools:
        return out
    if out["type"] in ("any", "tool"):
        raise InvalidRequest("'tool_choice' requires 'tools'.", param="tool_choice")
    return None


def _thinking(body: Json, conv: Conversation, max_tokens: int, forced_tool: bool) -> Json | None:
    """Extended thinking for `reasoning_effort`, when Anthropic can accept it at all."""
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or (effort != "none" and effort not in EFFORT_BUDGETS):
        raise InvalidRequest(
            "'reasoning_effort' must be one of none, minimal, low, medium, high, xhigh.",
            param="reasoning_effort",
        )
    # Anthropic rejects thinking with a prefill, with a forced tool, and in a tool loop whose
    # earlier thinking blocks (and their signatures) OpenAI clients cannot replay.
    if effort == "none" or conv.prefill or forced_tool or conv.open_tool_turn:
        return None
    if max_tokens <= MIN_THINKING_BUDGET:
        return None  # no room for the minimum budget (budget_tokens must be < max_tokens)
    budget = min(EFFORT_BUDGETS[effort], max(MIN_THINKING_BUDGET, max_tokens // 2))
    return {"type": "enabled", "budget_tokens": budget}


def _response_format(payload: Json, fmt: Any) -> list[str]:
    """Sets output_config for json_schema; returns system text to append (json_object)."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return []
    if kind == "json_object":
        return [JSON_OBJECT_INSTRUCTION]
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "'json_schema.schema' must be a JSON schema object.",
                param="response_format.json_schema.schema",
            )
        payload["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return []
    raise InvalidRequest(
        "'response_format.type' must be text, json_object or json_schema.",
        param="response_format.type",
    )
