"""The Responses stream, rendered from normalised chat chunks (hot path: orjson only).

`EventStream` is one response's stream across its attempts (a prefill continuation goes on
with the same items and sequence numbers). The order is the one OpenAI sends and the
SDK's `responses.stream()` helper checks: `response.created`, `response.in_progress`; per
output item `response.output_item.added`, then for a message
`response.content_part.added`, `response.output_text.delta`... `response.output_text.done`,
`response.content_part.done`; for a function call `response.function_call_arguments.delta`
... `.done`; for reasoning `response.reasoning_text.delta` ... `.done`; then
`response.output_item.done`; last `response.completed` (or `response.incomplete`). A
failure ends with `error` and `response.failed` (`failed_events`), never `completed`.
Every event carries its `sequence_number`, counted from 0.
"""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.responses.output import (
    ResponsesView,
    base,
    call_item,
    finish,
    message_item,
    reasoning_item,
    suffix,
    text_part,
)

Json = dict[str, Any]


def event(kind: str, seq: int, fields: Json) -> bytes:
    """One SSE event; the JSON never holds a raw newline, so each has one `\\ndata: `."""
    fields["type"] = kind
    fields["sequence_number"] = seq
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(fields) + b"\n\n"


def count_events(payload: bytes) -> int:
    """How many events rendered bytes hold (the API's next sequence number)."""
    return payload.count(b"\ndata: ")


class _Item:
    __slots__ = ("arguments", "call_id", "id", "index", "kind", "name", "open", "text")

    def __init__(self, kind: str, item_id: str, index: int) -> None:
        self.kind = kind  # message | reasoning | function_call
        self.id = item_id
        self.index = index
        self.text: list[str] = []
        self.call_id = ""
        self.name = ""
        self.arguments: list[str] = []
        self.open = True

    def done_form(self) -> Json:
        if self.kind == "message":
            return message_item(self.id, "".join(self.text))
        if self.kind == "reasoning":
            return reasoning_item(self.id, "".join(self.text))
        return call_item(self.id, self.call_id, self.name, "".join(self.arguments), "completed")


class EventStream:
    """One response's events. `feed` takes one chat choice delta; `close` ends it."""

    __slots__ = ("_calls", "_current", "_rid", "final", "items", "model", "seq", "started", "view")

    def __init__(self, view: ResponsesView, model: str) -> None:
        self.view = view
        self.model = model
        self.seq = 0
        self.started = False
        self.items: list[_Item] = []
        self._current: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # chat tool-call index -> item
        self._rid = suffix(view)
        self.final: Json | None = None  # the Response, once closed

    def _emit(self, out: list[bytes], kind: str, fields: Json) -> None:
        out.append(event(kind, self.seq, fields))
        self.seq += 1

    def feed(self, choice: Json) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self.started = True
            self._emit(out, "response.created", {"response": base(self.view, self.model)})
            self._emit(out, "response.in_progress", {"response": base(self.view, self.model)})
        delta = choice.get("delta") or {}
        if delta.get("reasoning_content"):
            self._text(out, "reasoning", delta["reasoning_content"])
        if delta.get("content"):
            self._text(out, "message", delta["content"])
        for call in delta.get("tool_calls") or ():
            self._call(out, call)
        return b"".join(out)

    def _open(self, out: list[bytes], kind: str, item_id: str) -> _Item:
        item = _Item(kind, item_id, len(self.items))
        self.items.append(item)
        if kind == "function_call":
            added = call_item(item_id, item.call_id, item.name, "", "in_progress")
        elif kind == "message":
            added = message_item(item_id, "", "in_progress")
            added["content"] = []
        else:
            added = reasoning_item(item_id, "", "in_progress")
            added["content"] = []
        self._emit(out, "response.output_item.added", {"output_index": item.index, "item": added})
        if kind != "function_call":
            part = text_part("") if kind == "message" else {"type": "reasoning_text", "text": ""}
            self._emit(out, "response.content_part.added", self._where(item, part=part))
        return item

    def _where(self, item: _Item, **fields: Any) -> Json:
        out: Json = {"item_id": item.id, "output_index": item.index}
        if item.kind != "function_call":
            out["content_index"] = 0
        out.update(fields)
        return out

    def _text(self, out: list[bytes], kind: str, text: str) -> None:
        item = self._current
        if item is None or item.kind != kind:
            if item is not None:
                self._close(out, item)
            prefix = "msg" if kind == "message" else "rs"
            index = sum(1 for i in self.items if i.kind == kind)
            item_id = f"{prefix}_{self._rid}" + (f"_{index}" if index else "")
            item = self._current = self._open(out, kind, item_id)
        item.text.append(text)
        if kind == "message":
            fields = self._where(item, delta=text, logprobs=[])
            self._emit(out, "response.output_text.delta", fields)
        else:
            self._emit(out, "response.reasoning_text.delta", self._where(item, delta=text))

    def _call(self, out: list[bytes], call: Json) -> None:
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            if self._current is not None:
                self._close(out, self._current)
                self._current = None
            item = _Item("function_call", f"fc_{self._rid}_{index}", len(self.items))
            item.call_id = call.get("id") or ""
            item.name = fn.get("name") or ""
            self._calls[index] = item = self._open_call(out, item)
        args = fn.get("arguments")
        if args:
            item.arguments.append(args)
            fields = self._where(item, delta=args)
            self._emit(out, "response.function_call_arguments.delta", fields)

    def _open_call(self, out: list[bytes], item: _Item) -> _Item:
        self.items.append(item)
        added = call_item(item.id, item.call_id, item.name, "", "in_progress")
        self._emit(out, "response.output_item.added", {"output_index": item.index, "item": added})
        return item

    def _close(self, out: list[bytes], item: _Item) -> None:
        if not item.open:
            return
        item.open = False
        text = "".join(item.text)
        if item.kind == "message":
            self._emit(out, "response.output_text.done", self._where(item, text=text, logprobs=[]))
            self._emit(out, "response.content_part.done", self._where(item, part=text_part(text)))
        elif item.kind == "reasoning":
            self._emit(out, "response.reasoning_text.done", self._where(item, text=text))
            part = {"type": "reasoning_text", "text": text}
            self._emit(out, "response.content_part.done", self._where(item, part=part))
        else:
            args = "".join(item.arguments)
            fields = self._where(item, arguments=args, name=item.name)
            self._emit(out, "response.function_call_arguments.done", fields)
        done = {"output_index": item.index, "item": item.done_form()}
        self._emit(out, "response.output_item.done", done)

    def close(self, finish_reason: str | None, chat_usage: Json | None) -> tuple[bytes, Json]:
        """The closing events and the final Response (`completed` or `incomplete`)."""
        out: list[bytes] = []
        if not self.started:  # an empty answer is still a response
            out.append(self.feed({}))
        for item in self.items:
            self._close(out, item)
        response = base(self.view, self.model)
        response["output"] = [item.done_form() for item in self.items]
        finish(response, finish_reason, chat_usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        self._emit(out, kind, {"response": response})
        self.final = response
        return b"".join(out), response


def failed_events(view: ResponsesView, model: str, seq: int, error: Json) -> bytes:
    """`error` then `response.failed`: how a stream that broke after content ends.
    `error` is an OpenAI error object (`{"message", "type", "param", "code"}`)."""
    message = str(error.get("message") or "The response failed.")
    code = error.get("code") or error.get("type") or "server_error"
    head = event("error", seq, {"code": code, "message": message, "param": error.get("param")})
    response = base(view, model, "failed")
    response["error"] = {"code": "server_error", "message": message}
    return head + event("response.failed", seq + 1, {"response": response})
