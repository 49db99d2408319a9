"""Rendering normalised chunks into the bytes the OpenAI SDK reads. Hot path: orjson only."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from orbyt.shared.providers.base import Json


class ChunkRenderer:
    """Stamps id/object/created/model on adapter chunks and renders SSE bytes."""

    __slots__ = (
        "_continuation",
        "_include_usage",
        "_prefix",
        "_tool_calls",
        "content_started",
        "finish_reason",
        "text",
        "usage",
    )
    closes: ClassVar[bool] = False  # its `usage_chunk` ends every answer (not only on request)

    def __init__(
        self,
        completion_id: str,
        created: int,
        model: str,
        continuation: bool = False,
        include_usage: bool = False,
    ) -> None:
        """`include_usage`: the caller asked for `stream_options.include_usage`, so every
        chunk carries `"usage": null` as OpenAI's do (the usage chunk then has the numbers)."""
        head = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
        )
        self._prefix = b"data: " + head[:-1] + b","
        self.usage: Json | None = None
        self.content_started = False
        self.finish_reason: str | None = None
        self.text: list[str] = []  # plain text sent so far (for prefill continuation)
        self._tool_calls = False
        self._continuation = continuation
        self._include_usage = include_usage

    def render(self, chunk: Json) -> bytes:
        """SSE bytes for one adapter chunk ("" if it carries nothing for the caller)."""
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return b""
        if self._continuation:  # the caller already has the role delta of this answer
            choices = [c for c in map(_without_role, choices) if c is not None]
            if not choices:
                return b""
        for choice in choices:
            self._observe(choice)
        out: dict[str, Any] = {"choices": choices}
        if "system_fingerprint" in chunk:
            out["system_fingerprint"] = chunk["system_fingerprint"]
        if self._include_usage:
            out["usage"] = None
        return self._prefix + orjson.dumps(out)[1:] + b"\n\n"

    def _observe(self, choice: Json) -> None:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            self.content_started = True
            self.text.append(content)
        if delta.get("tool_calls"):
            self.content_started = True
            self._tool_calls = True
        if delta.get("reasoning_content"):
            self.content_started = True
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            self.content_started = True

    def take_text(self) -> list[str]:
        text, self.text = self.text, []
        return text

    @property
    def plain_text_only(self) -> bool:
        return not self._tool_calls

    def usage_chunk(self, usage: Json | None = None, orbyt: Json | None = None) -> bytes:
        """The last chunk: `usage` (default: the upstream's) if the caller asked for it, and
        Orbyt's `orbyt` object naming the final route (the SDKs keep unknown fields)."""
        out: dict[str, Any] = {"choices": []}
        if self._include_usage or orbyt is None:
            out["usage"] = self.usage if usage is None else usage
        if orbyt is not None:
            out["orbyt"] = orbyt
        return self._prefix + orjson.dumps(out)[1:] + b"\n\n"


def _without_role(choice: Json) -> Json | None:
    delta = choice.get("delta")
    if not isinstance(delta, dict) or "role" not in delta:
        return choice
    delta = {k: v for k, v in delta.items() if k != "role"}
    if not any(v for v in delta.values()) and not choice.get("finish_reason"):
        return None
    return {**choice, "delta": delta}


def completion_body(completion_id: str, created: int, model: str, parsed: Json) -> bytes:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": parsed["choices"],
    }
    if parsed.get("usage"):
        body["usage"] = parsed["usage"]
    if parsed.get("system_fingerprint"):
        body["system_fingerprint"] = parsed["system_fingerprint"]
    return orjson.dumps(body)
