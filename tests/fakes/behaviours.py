"""Scriptable behaviours shared by every fake upstream.

A fake answers each generation request with one behaviour, taken FIFO from its
script (``fake.script(...)``) or, once the script is empty, ``fake.default``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT = "Hello from the fake upstream."

# Generic (OpenAI-style) finish reasons; every fake maps these to its native value and
# passes any other string through verbatim (e.g. "end_turn", "MAX_TOKENS", "model_length").
GENERIC_FINISHES = ("stop", "length", "tool_calls", "content_filter")


@dataclass(frozen=True)
class Reply:
    """A successful answer, optionally with timing and stream faults.

    Content:
      text:       answer text, split into tokens at word boundaries ("Hello", " world");
                  default DEFAULT_TEXT, or no text when tool_calls are given.
      tokens:     when set, ignore ``text``; emit N tokens "tok0", " tok1", ... (one delta each).
      tool_calls: ``[{"name": str, "arguments": dict | str, "id": optional str}]``, emitted as
                  the provider's native tool calls (ids generated in the provider's format).
      reasoning:  thinking text: DeepSeek reasoning_content, Anthropic thinking block (when the
                  request enables thinking), Gemini thought parts (when includeThoughts), Mistral
                  thinking chunks; OpenAI only counts it in reasoning_tokens.
      finish:     generic ("stop" | "length" | "tool_calls" | "content_filter", mapped to the
                  native value) or a provider-native value passed through verbatim; default
                  "tool_calls" when tool_calls are present, else "stop".
      usage:      (prompt_tokens, completion_tokens); default: estimated from request/tokens.
      cached_tokens: prompt tokens reported as served from cache.
      model:      model name to report instead of echoing the requested one.
      headers:    extra response headers.

    Timing (seconds): ``headers_delay`` before the status line; ``ttft`` before the first
    token; ``per_token`` between tokens. Non-stream: headers_delay + ttft + per_token*(N-1).

    Stream faults (N counts token deltas from 0):
      cut_after=N:  close the TCP connection after N tokens (no finish, no terminator).
                    Non-stream: send the headers and half of the body, then close.
      stall_after=N, stall=s: pause ``stall`` seconds after N tokens.
                    Non-stream: send the headers and half the body, pause, then the rest.
      malformed_at=N: emit one truncated (unparsable) event before token N, then continue.
                    Non-stream: a 200 whose JSON body is truncated.
      no_terminator: send finish and usage but no ``[DONE]`` / ``message_stop`` (Gemini
                    ``alt=sse`` has no terminator: no effect); the HTTP body then ends cleanly.
      midstream_error=N: after N tokens emit the provider's in-stream error event and end the
                    body; ``error_body`` overrides its payload. Ignored when not streaming.
    """

    text: str | None = None
    tokens: int | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish: str | None = None
    usage: tuple[int, int] | None = None
    reasoning: str | None = None
    cached_tokens: int = 0
    model: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    headers_delay: float = 0.0
    ttft: float = 0.0
    per_token: float = 0.0
    cut_after: int | None = None
    stall_after: int | None = None
    stall: float = 0.0
    malformed_at: int | None = None
    no_terminator: bool = False
    midstream_error: int | None = None
    error_body: dict[str, Any] | None = None

    @property
    def text_tokens(self) -> list[str]:
        if self.tokens is not None:
            return [f"tok{i}" if i == 0 else f" tok{i}" for i in range(self.tokens)]
        if self.text is None:
            return [] if self.tool_calls else split_tokens(DEFAULT_TEXT)
        return split_tokens(self.text)

    @property
    def reasoning_tokens(self) -> list[str]:
        return split_tokens(self.reasoning or "")

    @property
    def full_text(self) -> str:
        return "".join(self.text_tokens)

    def counts(self, prompt_estimate: int) -> Usage:
        """Token accounting for this reply (``usage`` wins over the estimates)."""
        reasoning = len(self.reasoning_tokens)
        if self.usage is not None:
            prompt, completion = self.usage
        else:
            tools = sum(len(fragments(tool_arguments(c))) + 1 for c in self.tool_calls)
            prompt, completion = prompt_estimate, len(self.text_tokens) + reasoning + tools
        return Usage(
            prompt, completion, min(reasoning, completion), min(self.cached_tokens, prompt)
        )

    def finish_reason(self) -> str:
        if self.finish:
            return self.finish
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class Usage:
    prompt: int
    completion: int
    reasoning: int = 0
    cached: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


@dataclass(frozen=True)
class Timing:
    """The fake's default reply, with this timing (same meaning as the Reply fields)."""

    ttft: float = 0.0
    per_token: float = 0.0
    headers_delay: float = 0.0


@dataclass(frozen=True)
class Error:
    """An HTTP error answer.

    status:      HTTP status.
    body:        dict (sent as JSON) or str (sent verbatim); None = the provider's real body
                 for ``kind``, else for ``status``.
    kind:        a named provider variant (see each fake's ``ERRORS``), e.g. OpenAI
                 "insufficient_quota" / "context_length_exceeded" / "content_policy", Anthropic
                 "spend_limit", Gemini "api_key_invalid" / "per_day_quota", Mistral
                 "tool_call_id", DeepSeek "reasoning_content".
    message:     replaces the message inside the provider's default body.
    headers:     extra response headers.
    retry_after: seconds, sent as ``retry-after`` (Gemini: RetryInfo.retryDelay in the body).
    delay:       seconds before answering.
    content_type: overrides the Content-Type (default application/json for dict bodies).
    """

    status: int
    body: dict[str, Any] | str | None = None
    kind: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    delay: float = 0.0
    content_type: str | None = None


@dataclass(frozen=True)
class Reset:
    """Close the TCP connection before sending any response byte.

    hard=True sends a TCP RST (client sees ECONNRESET); hard=False a clean FIN
    (client sees "server disconnected without sending a response").
    """

    hard: bool = True
    delay: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Accept the request and never answer (until the client disconnects or the fake stops)."""


Behaviour = Reply | Timing | Error | Reset | Hang
BEHAVIOUR_TYPES = (Reply, Timing, Error, Reset, Hang)


def split_tokens(text: str) -> list[str]:
    """Split text into tokens keeping their leading whitespace ("Hi there" -> "Hi", " there")."""
    tokens: list[str] = re.findall(r"\s*\S+", text)
    trailing = text[len("".join(tokens)) :]
    if trailing:
        if tokens:
            tokens[-1] += trailing
        else:
            tokens = [trailing]
    return tokens


def tool_arguments(call: dict[str, Any]) -> str:
    """A tool call's arguments as a compact JSON string."""
    args = call.get("arguments", {})
    return args if isinstance(args, str) else json.dumps(args, separators=(",", ":"))


def tool_arguments_obj(call: dict[str, Any]) -> Any:
    args = call.get("arguments", {})
    return json.loads(args) if isinstance(args, str) else args


def fragments(text: str, size: int = 8) -> list[str]:
    """Split a string into fixed-size fragments (tool-call argument deltas)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def estimate_tokens(*parts: Any) -> int:
    """A deterministic prompt-token estimate (about 4 characters per token)."""
    size = sum(len(json.dumps(p, ensure_ascii=False)) for p in parts if p is not None)
    return max(1, size // 4)
