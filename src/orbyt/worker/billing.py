"""What every attempt of one request was billed, summed (pure functions, no I/O).

An answer cut after content and continued on a fallback was billed twice: the cut attempt
by its provider (prompt and the tokens it sent) and the continuation by its own. The usage
returned to the caller and recorded for the key is the sum of both; the records keep each
model's share (`by_model`, in the F frame's `usage` meta) so cost is priced per model.

A cut stream usually carries no usage (OpenAI-shaped upstreams send it last): its tokens
are then estimated at about 4 characters per token, from the text the caller received
(completion) and from the request's message text (prompt), and marked `estimated`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orbyt.shared.providers.base import Json

CHARS_PER_TOKEN = 4
_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
_DETAILS = {
    "prompt_tokens_details": ("cached_tokens",),
    "completion_tokens_details": ("reasoning_tokens",),
}


@dataclass(frozen=True, slots=True)
class Billed:
    """One attempt's bill: the model, whose key paid (`pool`/`byok`) and its usage."""

    model: str
    key_source: str
    usage: Json
    estimated: bool = False

    def entry(self) -> Json:
        """This attempt's share as the usage records and the final chunk state it."""
        out: Json = {
            "model": self.model,
            "key_source": self.key_source,
            "prompt_tokens": _int(self.usage.get("prompt_tokens")),
            "completion_tokens": _int(self.usage.get("completion_tokens")),
        }
        cached = _int((self.usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
        if cached:
            out["cached_tokens"] = cached
        if self.estimated:
            out["estimated"] = True
        return out


def estimate_tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)  # ceiling: a started token is a billed token


def prompt_chars(body: Json) -> int:
    """Characters of the request's message text (string contents and text parts)."""
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return total


def cut_usage(reported: Json | None, body: Json, sent_chars: int) -> tuple[Json, bool]:
    """The bill of an attempt cut after sending `sent_chars` characters of text: what the
    upstream reported, if anything, else an estimate; and whether it is estimated."""
    if reported and reported.get("completion_tokens") is not None:
        return reported, False
    prompt = estimate_tokens(prompt_chars(body))
    completion = estimate_tokens(sent_chars)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage["total_tokens"] = prompt + completion
    return usage, True


def total_usage(bills: list[Billed]) -> Json:
    """The sum of every attempt's usage, in OpenAI's usage shape."""
    out: Json = dict.fromkeys(_COUNTS, 0)
    details: dict[str, dict[str, int]] = {}
    for bill in bills:
        prompt = _int(bill.usage.get("prompt_tokens"))
        completion = _int(bill.usage.get("completion_tokens"))
        out["prompt_tokens"] += prompt
        out["completion_tokens"] += completion
        out["total_tokens"] += _int(bill.usage.get("total_tokens")) or prompt + completion
        for group, fields in _DETAILS.items():
            raw = bill.usage.get(group)
            if isinstance(raw, dict):
                into = details.setdefault(group, {})
                for name in fields:
                    into[name] = into.get(name, 0) + _int(raw.get(name))
    out.update(details)
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
