"""Gemini `GenerateContentResponse` -> OpenAI response dicts, and the per-candidate pieces
the stream reuses (`google.stream`).

A malformed structure raises `Malformed`; `parse_response` turns it into a 502, the stream
into a skipped, counted event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from orbyt.shared.errors import upstream_error
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.google.errors import in_band_error, load_object

CONTENT_FILTER_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "LANGUAGE",
        "MODEL_ARMOR",
    }
)


class Malformed(Exception):
    """The upstream body does not have the GenerateContentResponse shape."""


@dataclass(slots=True)
class Pieces:
    """One candidate's new parts, sorted by kind."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[Json] = field(default_factory=list)


def finish_reason(raw: Any, has_tool_calls: bool) -> str:
    if not isinstance(raw, str):
        raw = ""
    if raw == "MAX_TOKENS":
        return "length"
    if raw in CONTENT_FILTER_REASONS:
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def call_id(seed: str, choice: int, index: int, name: str, arguments: str) -> str:
    """Deterministic OpenAI tool-call id for a Gemini functionCall (which may have none)."""
    material = f"{seed}\x1f{choice}\x1f{index}\x1f{name}\x1f{arguments}"
    digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"call_{index}_{digest}"


def candidate_pieces(cand: Json, seed: str, choice: int, first_call: int) -> Pieces:
    content = cand.get("content")
    parts = [] if content is None else _field(content, "parts", list, [])
    pieces = Pieces()
    for part in parts:
        if not isinstance(part, dict):
            raise Malformed("part is not an object")
        if part.get("functionCall") is not None:
            index = first_call + len(pieces.tool_calls)
            pieces.tool_calls.append(_tool_call(part, seed, choice, index))
        elif isinstance(part.get("text"), str):
            if part.get("thought") is True:
                pieces.reasoning += part["text"]
            else:
                pieces.text += part["text"]
    return pieces


def _field(obj: Any, name: str, kind: type, default: Any) -> Any:
    if not isinstance(obj, dict):
        raise Malformed(f"expected an object holding {name!r}")
    value = obj.get(name, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise Malformed(f"{name!r} has the wrong type")
    return value


def _tool_call(part: Json, seed: str, choice: int, index: int) -> Json:
    call = part["functionCall"]
    name = _field(call, "name", str, None)
    args = _field(call, "args", dict, {})
    if not name:
        raise Malformed("functionCall without a name")
    arguments = orjson.dumps(args).decode()
    out: Json = {
        "index": index,
        "id": call_id(seed, choice, index, name, arguments),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def usage(meta: Any) -> Json | None:
    if not isinstance(meta, dict):
        return None
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    completion = _count(meta, "candidatesTokenCount") + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _count(meta, "totalTokenCount") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _count(meta, "cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def _count(meta: Json, name: str) -> int:
    value = meta.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def logprobs(cand: Json) -> Json | None:
    """`logprobsResult` -> OpenAI `choices[].logprobs` (None when absent)."""
    result = cand.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates")
    tops = result.get("topCandidates")
    tops = tops if isinstance(tops, list) else []
    content: list[Json] = []
    for i, token in enumerate(chosen if isinstance(chosen, list) else []):
        if not isinstance(token, dict):
            continue
        top = tops[i].get("candidates") if i < len(tops) and isinstance(tops[i], dict) else None
        entry = _logprob(token)
        entry["top_logprobs"] = [_logprob(t) for t in top or [] if isinstance(t, dict)]
        content.append(entry)
    return {"content": content, "refusal": None}


def _logprob(token: Json) -> Json:
    text = text_of(token, "token")
    value = token.get("logProbability")
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
    return {"token": text, "logprob": number, "bytes": list(text.encode("utf-8", "replace"))}


def text_of(obj: Json, name: str) -> str:
    value = obj.get(name)
    return value if isinstance(value, str) else ""


def blocked(body: Json) -> bool:
    feedback = body.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def candidates(body: Json) -> list[tuple[int, Json]]:
    """(choice index, candidate) pairs; raises Malformed on a bad shape."""
    raw = _field(body, "candidates", list, [])
    out: list[tuple[int, Json]] = []
    for position, cand in enumerate(raw):
        if not isinstance(cand, dict):
            raise Malformed("candidate is not an object")
        index = cand.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            index = position
        out.append((index, cand))
    return out


def response_choices(body: Json) -> list[Json]:
    seed = text_of(body, "responseId")
    pairs = candidates(body)
    if not pairs and blocked(body):
        message = {"role": "assistant", "content": None}
        return [
            {"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None}
        ]
    if not pairs:
        raise Malformed("no candidates")
    choices = [_choice(index, cand, seed) for index, cand in pairs]
    return sorted(choices, key=lambda choice: int(choice["index"]))


def _choice(index: int, cand: Json, seed: str) -> Json:
    pieces = candidate_pieces(cand, seed, index, 0)
    message: Json = {"role": "assistant", "content": pieces.text or None}
    if pieces.reasoning:
        message["reasoning_content"] = pieces.reasoning
    if pieces.tool_calls:
        message["tool_calls"] = [
            {k: v for k, v in call.items() if k != "index"} for call in pieces.tool_calls
        ]
    return {
        "index": index,
        "message": message,
        "finish_reason": finish_reason(cand.get("finishReason"), bool(pieces.tool_calls)),
        "logprobs": logprobs(cand),
    }


def parse_response(raw: bytes) -> Json:
    """A non-stream answer: choices and usage, or the error it carries."""
    body = load_object(raw)
    if body is not None and body.get("error"):
        raise in_band_error(body["error"])
    try:
        if body is None:
            raise Malformed("not a JSON object")
        out: Json = {"choices": response_choices(body)}
    except Malformed:
        raise upstream_error(502, "google: malformed response body", type="server_error") from None
    tokens = usage(body.get("usageMetadata"))
    if tokens is not None:
        out["usage"] = tokens
    return out
