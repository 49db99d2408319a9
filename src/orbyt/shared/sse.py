"""Server-sent events: a byte-safe incremental decoder and the encoder the OpenAI SDKs parse.

The decoder follows the SSE spec as the OpenAI SDKs implement it: lines end in CR, LF or
CRLF (possibly split across network chunks), a blank line dispatches an event, several
`data:` lines join with `\\n`, `:` comments and `id:`/`retry:` lines are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEDecoder:
    """Feed raw bytes, get complete events. Keeps partial lines and partial UTF-8 across feeds."""

    __slots__ = ("_buf", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = False
        buf = self._buf + chunk
        if b"\r" in buf:
            self._pending_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            self._line(buf[start:end], events)
            start = end + 1
        self._buf = buf[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: dispatch whatever is complete but not yet terminated by a blank line."""
        events: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf, events)
            self._buf = b""
        self._line(b"", events)
        return events

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        if not raw:
            if self._data or self._event is not None:
                events.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event = None
            self._data = []
            return
        if raw[0] == 0x3A:  # ':' comment / keep-alive
            return
        line = raw.decode("utf-8", errors="replace")
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value


def encode_data(payload: bytes) -> bytes:
    """One data-only SSE event (no `event:` line, which the JS SDK would mis-handle)."""
    return b"data: " + payload + b"\n\n"
