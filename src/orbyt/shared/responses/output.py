"""A chat answer as a Response object: output items, usage, status (pure functions).

`ResponsesView` is what the queued job carries for a Responses request (`ChatJob.responses`):
the response id and creation time, the echo fields, whether to store it, the Responses
body a native OpenAI route sends (`request`: the conversation so far and this input as
items, the caller's parameters; `history` says where this request's own input items start
in it), and how many of the chat body's leading messages are the instructions (left out
of the stored conversation, as OpenAI leaves `instructions` out of a
`previous_response_id` chain). Item ids derive from the response id, so every worker
names them alike.
"""

from __future__ import annotations

from typing import Any, TypedDict

Json = dict[str, Any]

# chat finish_reason -> the Response's incomplete reason
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ResponsesView(TypedDict):
    id: str  # resp_...
    created_at: int
    echo: Json  # request.echo_fields
    store: bool
    skip: int  # leading chat messages that are the instructions
    history: int  # leading items of `request["input"]` that come from the stored chain
    request: Json  # the Responses body for a native OpenAI route: the conversation as items


def suffix(view: ResponsesView) -> str:
    return view["id"].removeprefix("resp_")


def base(view: ResponsesView, model: str, status: str = "in_progress") -> Json:
    """The Response object without output and usage."""
    return {
        "id": view["id"],
        "object": "response",
        "created_at": view["created_at"],
        "model": model,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "output": [],
        "usage": None,
        **view["echo"],
    }


def usage(chat: Json | None) -> Json | None:
    """Chat usage as Responses usage (input/output/cached/reasoning tokens)."""
    if not chat:
        return None
    prompt = int(chat.get("prompt_tokens") or 0)
    completion = int(chat.get("completion_tokens") or 0)
    details = chat.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    reasoning = (chat.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(cached),
            "cache_write_tokens": int(written),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": int(chat.get("total_tokens") or prompt + completion),
    }


def message_item(item_id: str, text: str, status: str = "completed") -> Json:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)],
    }


def text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str, status: str = "completed") -> Json:
    return {
        "id": item_id,
        "type": "reasoning",
        "status": status,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Json:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def finish(response: Json, finish_reason: str | None, chat_usage: Json | None) -> Json:
    """Set status, incomplete details and usage on a Response whose output is complete."""
    reason = INCOMPLETE.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = usage(chat_usage)
    return response


def from_chat(view: ResponsesView, model: str, parsed: Json) -> Json:
    """The whole Response for a non-stream chat answer (`choices[0]`)."""
    choice = parsed["choices"][0]
    message = choice.get("message") or {}
    rid = suffix(view)
    status = "incomplete" if choice.get("finish_reason") in INCOMPLETE else "completed"
    output: list[Json] = []
    if message.get("reasoning_content"):
        output.append(reasoning_item(f"rs_{rid}", message["reasoning_content"]))
    if message.get("content"):
        output.append(message_item(f"msg_{rid}", message["content"], status))
    for i, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") or {}
        output.append(
            call_item(
                f"fc_{rid}_{i}",
                call.get("id", ""),
                fn.get("name", ""),
                fn.get("arguments", ""),
                "completed",
            )
        )
    response = base(view, model)
    response["output"] = output
    return finish(response, choice.get("finish_reason"), parsed.get("usage"))


def assistant_message(output: list[Json]) -> Json:
    """The chat message a Response's output adds to its conversation."""
    text = "".join(
        part.get("text", "")
        for item in output
        if item["type"] == "message"
        for part in item["content"]
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item["type"] == "function_call"
    ]
    message: Json = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message
