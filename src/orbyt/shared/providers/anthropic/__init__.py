"""Anthropic Messages API (`POST {base}/v1/messages`), pinned to `anthropic-version: 2023-06-01`
so sampling parameters can still be forwarded (2026-10-21 rejects them). Key: `x-api-key`.

Request (OpenAI field -> Anthropic), in `request` and `messages`:

    system / developer messages  -> top-level `system` (joined with blank lines, in order)
    user text / image_url parts  -> text blocks; data URL -> base64 image source,
                                    http(s) URL -> url image source; jpeg/png/gif/webp only,
                                    other media types or schemes rejected; `detail` dropped
    user `file` part (PDF data)  -> document block; file ids / other types rejected
    input_audio and other parts  -> rejected
    assistant content            -> text blocks (`refusal` parts become text)
    assistant tool_calls         -> tool_use blocks; arguments parsed (invalid JSON or a
                                    non-object rejected, "" -> {}); ids outside
                                    [A-Za-z0-9_-] have those characters replaced by "_"
    consecutive tool messages    -> ONE user message of tool_result blocks (merged with a
                                    following user message, so the results come first)
    consecutive same-role turns  -> merged; empty or whitespace-only text is dropped
                                    (Anthropic rejects it), and so are messages left empty
    final assistant message      -> sent as prefill (Anthropic continues it); its trailing
                                    whitespace is stripped (Anthropic rejects it) and dropped
                                    again from the start of a streamed continuation
    message `name`, assistant `reasoning_content` -> dropped (thinking cannot be replayed
                                    without the signature Anthropic issued with it)
    role `function`, legacy `functions` / `function_call` -> rejected
    max_completion_tokens / max_tokens -> `max_tokens` (required upstream; default: the
                                    catalog's max_output_tokens, else 4096)
    temperature, top_p           -> same names, clamped to Anthropic's 0..1; dropped for
                                    Claude 4.7+ (claude-opus-4-7, ...), which accept only
                                    their default values
    stop                         -> `stop_sequences` (empty strings dropped)
    tools[].function             -> {name, description, input_schema: parameters}; `strict`
                                    dropped (older Claude models reject it); non-function
                                    tools rejected
    tool_choice                  -> auto -> auto, required -> any, none -> none, named ->
                                    {type: tool, name}; dropped when there are no tools
                                    (required / named without tools rejected)
    parallel_tool_calls: false   -> tool_choice.disable_parallel_tool_use (with tools and a
                                    tool_choice other than none)
    response_format json_schema  -> output_config.format {type: json_schema, schema}
    response_format json_object  -> no native mode: an instruction is appended to `system`
                                    (JSON_OBJECT_INSTRUCTION); `text` -> nothing
    reasoning_effort             -> thinking {type: enabled, budget_tokens}: minimal 1024,
                                    low 2048, medium 8192, high 16384, xhigh 32768, capped
                                    at max(1024, max_tokens // 2); `none` -> no thinking.
                                    Thinking is left off (the request still goes) with a
                                    prefill, a forced tool_choice, an unfinished tool loop
                                    (OpenAI clients cannot replay thinking signatures) or
                                    max_tokens <= 1024; while it is on, temperature/top_p
                                    are dropped (Anthropic only accepts their defaults)
    user / safety_identifier     -> metadata.user_id
    stream                       -> stream: true (usage always arrives in the stream)
    n > 1                        -> rejected (param "n")
    audio, modalities incl. audio, web_search_options -> rejected
    seed, logprobs, top_logprobs, logit_bias, presence_penalty, frequency_penalty,
    stream_options, service_tier, store, metadata, prompt_cache_key, verbosity,
    prediction, and any other field -> dropped (no equivalent); `extra` never goes upstream

Response: text blocks -> `content` (None when there are only tool calls), tool_use ->
`tool_calls` (arguments re-serialised), thinking -> non-standard `reasoning_content`.
stop_reason end_turn/stop_sequence/pause_turn -> stop, max_tokens/
model_context_window_exceeded -> length, tool_use -> tool_calls, refusal -> content_filter.
Usage: prompt_tokens = input + cache_creation + cache_read (Anthropic's input_tokens exclude
both), cached_tokens = cache_read, cache_write_tokens = cache_creation (when > 0),
reasoning_tokens = output_tokens_details.thinking_tokens (when present).

Stream: message_start -> role chunk; text/thinking deltas -> content / reasoning_content;
each tool_use block gets the next tool_calls index (id, name, arguments "" first, then
input_json_delta fragments); message_delta -> finish_reason chunk plus a usage-only chunk
(`choices: []`); message_stop -> done; ping and unknown events ignored; undecodable events
counted in `malformed`; an `error` event (even an undecodable one) raises UpstreamError.

Errors: Anthropic's message prefixed "anthropic: ", OpenAI-like type/code; 529 -> 503 and
retryable; 401/403 -> AUTH; billing errors, spend-limit `details.error_code`s and "credit
balance is too low" -> QUOTA (insufficient_quota); "prompt is too long" and friends ->
context_length_exceeded (CONTEXT); retry-after honoured.

Modules: `request` (body and headers; `messages` translates the conversation), `response`
(non-stream answer), `stream` (`AnthropicStreamState` and event parsing), `errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.anthropic.errors import map_anthropic_error
from orbyt.shared.providers.anthropic.messages import prefill_whitespace
from orbyt.shared.providers.anthropic.request import API_VERSION, build_request, messages_url
from orbyt.shared.providers.anthropic.response import parse_message
from orbyt.shared.providers.anthropic.stream import AnthropicStreamState, parse_anthropic_event
from orbyt.shared.providers.base import Adapter, Json, Target, UpstreamRequest
from orbyt.shared.sse import SSEEvent

__all__ = ["ADAPTER", "API_VERSION", "AnthropicAdapter", "AnthropicStreamState", "messages_url"]


class AnthropicAdapter:
    name: ClassVar[str] = "anthropic"
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__ANTHROPIC__KEYS"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    needs_key: ClassVar[bool] = True

    def build_request(self, body: Json, target: Target) -> UpstreamRequest:
        return build_request(body, target)

    def parse_response(self, raw: bytes, target: Target) -> Json:
        return parse_message(raw)

    def new_stream_state(self, body: Json, target: Target) -> AnthropicStreamState:
        return AnthropicStreamState(prefill_ws=prefill_whitespace(body))

    def parse_event(self, event: SSEEvent, state: AnthropicStreamState) -> list[Json]:
        return parse_anthropic_event(event, state)

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return map_anthropic_error(status, headers, raw)


ADAPTER: Adapter[AnthropicStreamState] = AnthropicAdapter()
