"""The Responses translations (shared.responses), checked against the openai SDK's own
types: the chat body a request becomes, the Response a chat answer becomes, and the event
stream, parsed event by event as `ResponseStreamEvent`s."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from openai.types.responses import Response, ResponseStreamEvent

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.responses.events import EventStream, count_events, failed_events
from orbyt.shared.responses.output import ResponsesView, assistant_message, from_chat
from orbyt.shared.responses.request import echo_fields, to_chat
from orbyt.shared.responses.store import input_items

# every stream event class of the SDK by its `type`
EVENTS: dict[str, Any] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(ResponseStreamEvent)[0])
}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def view(**body: Any) -> ResponsesView:
    return ResponsesView(
        id="resp_abc",
        created_at=1700000000,
        echo=echo_fields({"model": "m/x", **body}),
        store=True,
        skip=0,
        history=0,
        request={},
    )


def test_a_full_request_becomes_a_chat_body() -> None:
    body = {
        "model": "anthropic/claude",
        "instructions": "Be terse.",
        "input": [
            {"role": "user", "content": "Weather?"},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "Checking."}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "c2", "name": "get_weather",
             "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": [
                {"type": "input_text", "text": "rain"}
            ]},
            {"role": "user", "content": [
                {"type": "input_text", "text": "And this?"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
            ]},
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        "max_output_tokens": 50,
        "reasoning": {"effort": "low"},
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u1",
        "metadata": {"k": "v"},
        "store": False,
        "stream": True,
    }  # fmt: skip
    history = [{"role": "user", "content": "Earlier"}, {"role": "assistant", "content": "Yes"}]
    assert to_chat(body, history) == {
        "model": "anthropic/claude",
        "messages": [
            {"role": "system", "content": "Be terse."},
            *history,
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                    {"id": "c2", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": "rain"},
            {"role": "user", "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ]},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather.",
            "parameters": WEATHER["parameters"], "strict": True,
        }}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u1",
        "max_completion_tokens": 50,
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "w", "schema": {"type": "object"}}},
        "stream": True,
        "stream_options": {"include_usage": True},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
         "input[0].content[0].type"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format"),
        ({"input": "x", "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": []}, "input"),
    ],
)  # fmt: skip
def test_what_no_chat_upstream_takes_is_a_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        to_chat({"model": "m/x", **body}, [])
    assert info.value.param == param
    if param == "tools[0].type":
        assert "web_search" in info.value.message


def test_a_chat_answer_becomes_a_response() -> None:
    parsed = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "Hmm.",
                    "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }  # fmt: skip
    r = Response.model_validate(from_chat(view(tools=[WEATHER]), "anthropic/claude", parsed))
    assert r.status == "completed" and r.incomplete_details is None
    assert [item.type for item in r.output] == ["reasoning", "message", "function_call"]
    assert r.output_text == "Checking."
    call = r.output[2]
    assert call.type == "function_call" and call.call_id == "call_1"
    assert r.usage is not None and r.usage.input_tokens_details.cached_tokens == 4
    assert r.usage.output_tokens_details.reasoning_tokens == 2
    assert r.tools[0].type == "function" and r.store is True  # type: ignore[attr-defined]
    assert assistant_message(from_chat(view(), "m/x", parsed)["output"]) == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [parsed["choices"][0]["message"]["tool_calls"][0]],  # type: ignore[index]
    }


def test_a_cut_short_answer_is_incomplete() -> None:
    parsed = {"choices": [{"finish_reason": "length", "message": {"content": "Once"}}]}
    r = Response.model_validate(from_chat(view(max_output_tokens=1), "m/x", parsed))
    assert r.status == "incomplete"
    assert r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].type == "message" and r.output[0].status == "incomplete"


def chunks() -> list[dict[str, Any]]:
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip
    return [
        {"delta": {"role": "assistant", "reasoning_content": "Think"}},
        {"delta": {"reasoning_content": " hard"}},
        {"delta": {"content": "Hello"}},
        {"delta": {"content": " world"}},
        {"delta": {"tool_calls": [call]}},
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}},
        {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}},
        {"delta": {}, "finish_reason": "tool_calls"},
    ]


def parse_events(raw: bytes) -> list[Any]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        head, data = block.split("\n")
        fields = json.loads(data.removeprefix("data: "))
        event = EVENTS[fields["type"]].model_validate(fields)
        assert head == f"event: {event.type}"
        out.append(event)
    return out


def test_the_stream_is_the_sdks_event_sequence() -> None:
    stream = EventStream(view(), "m/x")
    raw = b"".join(stream.feed(c) for c in chunks())
    tail, final = stream.close("tool_calls", {"prompt_tokens": 3, "completion_tokens": 4})
    events = parse_events(raw + tail)
    assert count_events(raw + tail) == len(events)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # reasoning
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # message
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # function call
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-1].response
    assert done.output_text == "Hello world" and done.usage.total_tokens == 7
    assert [item.type for item in done.output] == ["reasoning", "message", "function_call"]
    assert done.output[2].arguments == '{"city":"Paris"}'
    assert Response.model_validate(final) == done


def test_an_empty_answer_still_completes() -> None:
    stream = EventStream(view(), "m/x")
    tail, _ = stream.close("stop", None)
    kinds = [e.type for e in parse_events(tail)]
    assert kinds == ["response.created", "response.in_progress", "response.completed"]


def test_a_failure_after_content_ends_with_error_and_failed() -> None:
    error = {"message": "cut", "type": "server_error", "param": None, "code": "stream_cut"}
    events = parse_events(failed_events(view(), "m/x", 7, error))
    assert [(e.type, e.sequence_number) for e in events] == [
        ("error", 7),
        ("response.failed", 8),
    ]
    assert events[0].code == "stream_cut" and events[0].message == "cut"
    assert events[1].response.status == "failed" and events[1].response.error.message == "cut"


def test_input_items_get_ids_and_typed_content() -> None:
    items = input_items("Hi", "resp_abc")
    assert items == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}],
            "status": "completed",
            "id": "in_abc_0",
        }
    ]
