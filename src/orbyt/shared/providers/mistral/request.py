"""OpenAI chat body -> Mistral chat request. Pure; the mapping table is in
`shared.providers.mistral`."""

from __future__ import annotations

import hashlib
import re
import string
from typing import Any

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.base import Json, Target
from orbyt.shared.providers.mistral.errors import PROVIDER
from orbyt.shared.providers.openai.request import (
    GATEWAY_FIELDS,
    message_list,
    reject,
    reject_fields,
)

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


def payload(body: Json, target: Target) -> Json:
    """The Mistral request body (strict: only fields Mistral knows go upstream)."""
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


def url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
