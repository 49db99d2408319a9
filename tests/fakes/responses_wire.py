"""OpenAI's Responses wire (``POST /v1/responses``) for FakeOpenAI: the Response object and
its event stream, built from a scripted ``Reply`` like the chat wire.

Non-stream: one Response (``reasoning`` item when the reply has reasoning, a ``message``
with ``output_text``, one ``function_call`` per tool call; ``incomplete`` with
``max_output_tokens`` for a ``length`` finish). Stream: ``response.created``,
``response.in_progress``, then per item ``response.output_item.added`` ... ``.done`` with
the content part and delta events between, last ``response.completed`` (or
``response.incomplete``); every event names itself in ``event:`` and carries its
``sequence_number``. There is no ``[DONE]``. Text deltas and function-call items count as
tokens for the fault positions (``cut_after``, ``stall_after``, ``midstream_error``).
"""

from __future__ import annotations

import time
from typing import Any

from .behaviours import Reply, Usage, estimate_tokens, fragments, tool_arguments
from .wire import Frame, sse

Json = dict[str, Any]
ECHOED = (
    "instructions", "max_output_tokens", "metadata", "parallel_tool_calls", "previous_response_id",
    "reasoning", "temperature", "text", "tool_choice", "tools", "top_p", "truncation", "user",
)  # fmt: skip
DEFAULTS: Json = {
    "metadata": {},
    "parallel_tool_calls": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
}


def counts(body: Json, reply: Reply) -> Usage:
    return reply.counts(estimate_tokens(body.get("input"), body.get("instructions")))


def usage(u: Usage) -> Json:
    return {
        "input_tokens": u.prompt,
        "input_tokens_details": {"cached_tokens": u.cached, "cache_write_tokens": 0},
        "output_tokens": u.completion,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.total,
    }


class ResponseBuilder:
    """One answer's ids, items and events."""

    def __init__(self, body: Json, reply: Reply, new_id: Any) -> None:
        self.body = body
        self.reply = reply
        self.new_id = new_id
        self.id = "resp_" + new_id(48)
        self.created = int(time.time())
        self.seq = 0
        self.calls = [
            (
                "fc_" + new_id(48),
                tc.get("id") or "call_" + new_id(24),
                tc["name"],
                tool_arguments(tc),
            )
            for tc in reply.tool_calls
        ]
        self.msg_id = "msg_" + new_id(48)
        self.rs_id = "rs_" + new_id(48)

    def response(self, status: str, output: list[Json], with_usage: bool) -> Json:
        body = self.body
        out: Json = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "model": self.reply.model or body["model"],
            "output": output,
            "store": body.get("store", True),
            "usage": None,
        }
        for name in ECHOED:
            out[name] = body.get(name, DEFAULTS.get(name))
        if with_usage:
            out["usage"] = usage(counts(body, self.reply))
            if self.reply.finish_reason() == "length":
                out["status"] = "incomplete"
                out["incomplete_details"] = {"reason": "max_output_tokens"}
        return out

    def items(self) -> list[Json]:
        out: list[Json] = []
        if self.reply.reasoning_tokens:
            out.append({"id": self.rs_id, "type": "reasoning", "summary": []})
        if self.reply.text_tokens:
            out.append(self.message(self.reply.full_text, "completed"))
        for fc_id, call_id, name, args in self.calls:
            out.append(self.call(fc_id, call_id, name, args, "completed"))
        return out

    def message(self, text: str | None, status: str) -> Json:
        content = [] if text is None else [self.part(text)]
        return {
            "id": self.msg_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    @staticmethod
    def part(text: str) -> Json:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    @staticmethod
    def call(fc_id: str, call_id: str, name: str, args: str, status: str) -> Json:
        return {
            "id": fc_id,
            "type": "function_call",
            "status": status,
            "arguments": args,
            "call_id": call_id,
            "name": name,
        }

    def whole(self) -> Json:
        return self.response("completed", self.items(), True)

    # ------------------------------------------------------------------ stream
    def event(self, kind: str, fields: Json) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return sse(data, event=kind)

    def frames(self) -> list[Frame]:
        ev = self.event
        frames = [
            Frame(
                ev("response.created", {"response": self.response("in_progress", [], False)}),
                "meta",
            ),
            Frame(
                ev("response.in_progress", {"response": self.response("in_progress", [], False)}),
                "meta",
            ),
        ]
        index = 0
        if self.reply.reasoning_tokens:
            item = {"id": self.rs_id, "type": "reasoning", "summary": []}
            frames.append(
                Frame(ev("response.output_item.added", {"output_index": 0, "item": item}), "meta")
            )
            frames.append(
                Frame(ev("response.output_item.done", {"output_index": 0, "item": item}), "meta")
            )
            index = 1
        if self.reply.text_tokens:
            frames += self._message_frames(index)
            index += 1
        for i, call in enumerate(self.calls):
            frames += self._call_frames(index + i, *call)
        final = self.response("completed", self.items(), True)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        frames.append(Frame(ev(kind, {"response": final}), "tail"))
        return frames

    def _message_frames(self, index: int) -> list[Frame]:
        ev, where = self.event, {"item_id": self.msg_id, "output_index": index}
        text = self.reply.full_text
        added = self.message(None, "in_progress")
        frames = [
            Frame(ev("response.output_item.added", {"output_index": index, "item": added}), "meta"),
            Frame(
                ev(
                    "response.content_part.added",
                    {**where, "content_index": 0, "part": self.part("")},
                ),
                "meta",
            ),
        ]
        for token in self.reply.text_tokens:
            delta = {**where, "content_index": 0, "delta": token, "logprobs": []}
            frames.append(Frame(ev("response.output_text.delta", delta)))
        done = self.message(text, "completed")
        frames += [
            Frame(
                ev(
                    "response.output_text.done",
                    {**where, "content_index": 0, "text": text, "logprobs": []},
                ),
                "tail",
            ),
            Frame(
                ev(
                    "response.content_part.done",
                    {**where, "content_index": 0, "part": self.part(text)},
                ),
                "tail",
            ),
            Frame(ev("response.output_item.done", {"output_index": index, "item": done}), "tail"),
        ]
        return frames

    def _call_frames(
        self, index: int, fc_id: str, call_id: str, name: str, args: str
    ) -> list[Frame]:
        ev, where = self.event, {"item_id": fc_id, "output_index": index}
        added = self.call(fc_id, call_id, name, "", "in_progress")
        frames = [Frame(ev("response.output_item.added", {"output_index": index, "item": added}))]
        for part in fragments(args):
            frames.append(
                Frame(ev("response.function_call_arguments.delta", {**where, "delta": part}))
            )
        done = self.call(fc_id, call_id, name, args, "completed")
        frames += [
            Frame(
                ev(
                    "response.function_call_arguments.done",
                    {**where, "arguments": args, "name": name},
                )
            ),
            Frame(ev("response.output_item.done", {"output_index": index, "item": done})),
        ]
        return frames


def error_event(message: str, code: str | None, seq: int) -> bytes:
    data = {
        "type": "error",
        "sequence_number": seq,
        "code": code,
        "message": message,
        "param": None,
    }
    return sse(data, event="error")
