"""A `/v1/responses` request: its validation, and its translation to a chat body.

`to_chat` is the one translation every provider's adapter then takes as it takes any chat
request: `instructions` → a system message, the conversation of `previous_response_id`
(chat messages, see `shared.responses.store`), `input` (a string, or items: messages with
`input_text` / `input_image` / `output_text` parts, `function_call`,
`function_call_output`; `reasoning` items are dropped, no chat upstream takes them back),
function `tools` (any other tool type is a 400 naming it), `tool_choice`,
`parallel_tool_calls`, `text.format` → `response_format`, `max_output_tokens`,
`reasoning.effort`, `temperature`, `top_p`, `user`. `metadata` and `store` stay with
Orbyt (they are echoed in the Response, never sent upstream).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.wire import MAX_MODEL_ID, MODEL_ID, Extra

Json = dict[str, Any]

# fmt: off
# Top-level parameters of OpenAI's Responses API that Orbyt serves, and Orbyt's `extra`.
RESPONSES_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
        "text", "max_output_tokens", "reasoning", "temperature", "top_p", "metadata",
        "user", "stream", "store", "previous_response_id", "include", "truncation",
        "service_tier", "safety_identifier", "prompt_cache_key", "stream_options", "extra",
    }
)
# fmt: on
RESPONSE_ID = r"^resp_[A-Za-z0-9_-]{1,128}$"
FORMATS = ("text", "json_object", "json_schema")


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_ID, pattern=MODEL_ID)]
    input: str | list[dict[str, Any]] = Field(default_factory=list, max_length=2048)
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=512)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    text: dict[str, Any] | None = None
    max_output_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    reasoning: dict[str, Any] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    metadata: dict[str, str] | None = Field(None, max_length=16)
    user: str | None = None
    stream: StrictBool | None = None
    store: StrictBool | None = None
    previous_response_id: Annotated[str, Field(pattern=RESPONSE_ID)] | None = None
    extra: Extra | None = None


def echo_fields(body: Json) -> Json:
    """The request fields a Response object repeats, with OpenAI's defaults."""
    reasoning = body.get("reasoning") or {}
    fmt = (body.get("text") or {}).get("format") or {"type": "text"}
    return {
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice", "auto"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True),
        "text": {"format": fmt},
        "truncation": body.get("truncation", "disabled"),
        "user": body.get("user"),
        "background": False,
    }


def to_chat(body: Json, history: list[Json]) -> Json:
    """The chat body for a validated Responses `body`; `history` is the stored
    conversation of its `previous_response_id` (chat messages, without instructions)."""
    messages: list[Json] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    messages.extend(history)
    messages.extend(input_messages(body.get("input", [])))
    if not messages:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    chat: Json = {"model": body["model"], "messages": messages}
    if body.get("tools"):
        chat["tools"] = [chat_tool(t, i) for i, t in enumerate(body["tools"])]
    if "tool_choice" in body:
        chat["tool_choice"] = chat_tool_choice(body["tool_choice"])
    for name in ("parallel_tool_calls", "temperature", "top_p", "user"):
        if name in body:
            chat[name] = body[name]
    if "max_output_tokens" in body:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    fmt = response_format((body.get("text") or {}).get("format"))
    if fmt is not None:
        chat["response_format"] = fmt
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def input_messages(items: str | list[Json]) -> list[Json]:
    """Responses input items as chat messages; consecutive function calls (and the text
    of the assistant turn they follow) become one assistant message."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    out: list[Json] = []
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, i))
        elif kind == "function_call":
            _add_call(out, item, i)
        elif kind == "function_call_output":
            out.append(_call_output(item, i))
        elif kind != "reasoning":
            raise InvalidRequest(
                f"Input items of type {_shown(kind)} are not supported by this gateway.",
                param=f"input[{i}].type",
            )
    return out


def _shown(kind: Any) -> str:
    text = str(kind)
    return repr(text) if len(text) <= 40 and text.replace("_", "").isalnum() else "this type"


def _message(item: Json, i: int) -> Json:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise InvalidRequest(f"Invalid value for 'input[{i}].role'.", param=f"input[{i}].role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid 'input[{i}].content'.", param=f"input[{i}].content")
    parts = [_part(p, i, j) for j, p in enumerate(content)]
    if role != "user":  # only a user turn takes images; the others are plain text
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _part(part: Any, i: int, j: int) -> Json:
    param = f"input[{i}].content[{j}]"
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image: Json = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_image":
        raise InvalidRequest(
            "Only 'image_url' images (URLs or data URLs) are supported.", param=param
        )
    raise InvalidRequest(
        f"Content parts of type {_shown(kind)} are not supported by this gateway.",
        param=f"{param}.type",
    )


def _add_call(out: list[Json], item: Json, i: int) -> None:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidRequest(f"'input[{i}]' needs a 'call_id' and a 'name'.", param=f"input[{i}]")
    args = item.get("arguments")
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": args if isinstance(args, str) else "{}"},
    }
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        return
    out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _call_output(item: Json, i: int) -> Json:
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"'input[{i}]' needs a 'call_id'.", param=f"input[{i}].call_id")
    if isinstance(output, list):
        output = "".join(p.get("text", "") for p in output if isinstance(p, dict))
    if not isinstance(output, str):
        raise InvalidRequest(f"Invalid 'input[{i}].output'.", param=f"input[{i}].output")
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def chat_tool(tool: Json, i: int) -> Json:
    """A Responses function tool as a chat tool; any other type is a 400 naming it."""
    kind = tool.get("type")
    if kind != "function":
        raise InvalidRequest(
            f"Tools of type {_shown(kind)} are not supported for this model; only "
            "'function' tools are.",
            param=f"tools[{i}].type",
        )
    if not isinstance(tool.get("name"), str):
        raise InvalidRequest(f"Missing required parameter: 'tools[{i}].name'.", param="tools")
    function: Json = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def chat_tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest("Invalid value for 'tool_choice'.", param="tool_choice")


def response_format(fmt: Any) -> Json | None:
    """`text.format` as a chat `response_format` (None for plain text)."""
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in FORMATS:
        raise InvalidRequest("Invalid value for 'text.format.type'.", param="text.format.type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
    if not isinstance(schema.get("name"), str) or not isinstance(schema.get("schema"), dict):
        raise InvalidRequest(
            "'text.format' of type json_schema needs a 'name' and a 'schema'.",
            param="text.format",
        )
    return {"type": "json_schema", "json_schema": schema}


# Not sent to OpenAI's own Responses API: Orbyt's fields and the state Orbyt keeps itself.
NATIVE_DROP = frozenset({"extra", "previous_response_id", "store", "model"})


def native_body(body: Json, history: list[Json]) -> Json:
    """The Responses body for OpenAI itself: the caller's parameters, and as `input` the
    stored conversation (`history`, items) then this request's input items."""
    out = {k: v for k, v in body.items() if k not in NATIVE_DROP}
    items = body.get("input", [])
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    out["input"] = [as_input(item) for item in [*history, *items]]
    return out


def as_input(item: Json) -> Json:
    """An item as OpenAI takes it back as input: messages and function calls without the
    ids and status of a Response (another provider's, or not stored upstream)."""
    if item.get("type", "message") in ("message", "function_call"):
        return {k: v for k, v in item.items() if k not in ("id", "status")}
    return item


def output_as_input(output: list[Json]) -> list[Json]:
    """A Response's output as the items that continue its conversation (reasoning items
    are left out: only the upstream that made them could read them back)."""
    out: list[Json] = []
    for item in output:
        if item.get("type") == "message":
            parts = [{"type": "output_text", "text": p.get("text", "")} for p in item["content"]]
            out.append({"type": "message", "role": "assistant", "content": parts})
        elif item.get("type") == "function_call":
            out.append(
                {
                    "type": "function_call",
                    "call_id": item.get("call_id"),
                    "name": item.get("name"),
                    "arguments": item.get("arguments", ""),
                }
            )
    return out
