"""DeepSeek chat answers -> OpenAI response dicts (usage normalised, capacity stops raised).
Pure; see `shared.providers.deepseek`."""

from __future__ import annotations

from typing import Any

from orbyt.shared.providers.base import Json
from orbyt.shared.providers.deepseek.errors import PROVIDER, capacity_error
from orbyt.shared.providers.openai.response import as_int, malformed


def translate(body: Json, choices: list[Any]) -> Json:
    out: Json = {"choices": [_response_choice(c) for c in choices]}
    usage = usage_of(body.get("usage"))
    if usage:
        out["usage"] = usage
    if isinstance(body.get("system_fingerprint"), str):
        out["system_fingerprint"] = body["system_fingerprint"]
    return out


def usage_of(raw: Any) -> Json | None:
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


def _response_choice(choice: Any) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    if choice.get("finish_reason") == "insufficient_system_resource":
        raise capacity_error(True)
    return choice
