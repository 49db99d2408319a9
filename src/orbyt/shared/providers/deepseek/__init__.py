"""DeepSeek chat completions (`POST {base_url}/chat/completions`, Bearer).

DeepSeek is OpenAI-shaped; the differences are handled here.

Request mapping (OpenAI field -> DeepSeek):

- `model`: the upstream id.
- role `developer` -> `system`; role `function` is rejected (`messages[i].role`).
- Parts: `text` as is; `image_url`, `input_audio`, `file` are rejected
  (`messages[i].content[j]`): DeepSeek chat is text-only.
- Assistant `reasoning_content` passes through; an assistant message with `tool_calls`
  and no `reasoning_content` gets `""` (see below). Assistant `refusal`, `annotations`,
  `audio`, `function_call` are dropped.
- `n`: 1 is dropped, anything else rejected (`n`). `seed`: rejected (`seed`); dropping it
  would silently break the reproducibility the caller asked for.
- `reasoning_effort`: `minimal`/`low` -> `low`; `medium`/`high`/`xhigh` -> `high`;
  `max`/`ultra` -> `max`; `none` -> `thinking: {"type": "disabled"}` (unless `thinking`
  is set); any other value is rejected.
- `response_format`: `text`, `json_object` as is; `json_schema` (and anything else) is
  rejected (`response_format.type`) rather than downgraded to unvalidated JSON.
- `stop`: at most 16 (`stop`); `tools`: at most 128 (`tools`).
- `max_completion_tokens` -> `max_tokens` (wins when both are set).
- `stream_options` -> `{"include_usage": true}` on streams (the worker accounts usage),
  dropped otherwise.
- As is: `tool_choice`, `temperature`, `top_p`, penalties, `logprobs`, `top_logprobs`,
  `max_tokens`, `stream`, `thinking` (sent through `extra_body`).
- Dropped: `user`, `safety_identifier`, `logit_bias`, `store`, `metadata`,
  `service_tier`, `verbosity`, `prompt_cache_key` (caching is automatic),
  `parallel_tool_calls`, `prediction`, `modalities: ["text"]`.
- Rejected: `audio`, other `modalities`, `web_search_options`, `functions`,
  `function_call`.
- Anything else passes through.

Reasoning echo: in thinking mode (DeepSeek's default) an assistant message that made tool
calls must come back with its `reasoning_content`, or DeepSeek answers 400. The OpenAI
SDKs keep unknown response fields, so callers who append the returned message object
echo it unchanged. Callers who rebuild history from their own records lose it; for them
an empty string is sent, which satisfies the check (the model then continues without
its earlier reasoning) instead of failing the whole conversation.

Responses: non-stream bodies may start with keep-alive blank lines; streams carry
`: keep-alive` comments (dropped by the SSE decoder) and reasoning deltas with
`"content": null` (the null is not forwarded). `finish_reason`
`insufficient_system_resource` raises a retryable 503 (in a stream, `before_content`
tells the worker whether anything was sent). Usage keeps
`prompt_tokens_details.cached_tokens` (from `prompt_cache_hit_tokens` when missing) and
`completion_tokens_details.reasoning_tokens`; usage riding on a chunk with choices is
split into its own `{"choices": [], "usage": ...}` item.

Errors: OpenAI-shaped. 402 (insufficient balance) -> QUOTA, 401 -> AUTH, 422 -> FINAL,
429/500/503 retryable. The masked key DeepSeek puts in 401 messages is removed.

Modules: `request`, `response`, `stream` (`DeepSeekStreamState`), `errors`; the adapter is
`OpenAIDialect` with those hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.base import Adapter, Json, Target
from orbyt.shared.providers.deepseek import errors, request, response, stream
from orbyt.shared.providers.deepseek.stream import DeepSeekStreamState
from orbyt.shared.providers.openai.dialect import OpenAIDialect

__all__ = ["ADAPTER", "DeepSeekAdapter", "DeepSeekStreamState"]


class DeepSeekAdapter(OpenAIDialect[DeepSeekStreamState]):
    name: ClassVar[str] = errors.PROVIDER
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__DEEPSEEK__KEYS"
    default_base_url: ClassVar[str] = "https://api.deepseek.com"

    def payload(self, body: Json, target: Target) -> Json:
        return request.payload(body, target)

    def body_error(self, body: Json) -> UpstreamError | None:
        return errors.in_band_error(body, started=False) if body.get("error") else None

    def translate_response(self, body: Json, choices: list[Any]) -> Json:
        return response.translate(body, choices)

    def new_stream_state(self, body: Json, target: Target) -> DeepSeekStreamState:
        return DeepSeekStreamState()

    def chunk_error(self, chunk: Json, state: DeepSeekStreamState) -> UpstreamError | None:
        return stream.chunk_error(chunk, state)

    def stream_items(
        self, chunk: Json, choices: list[Any], state: DeepSeekStreamState
    ) -> list[Json]:
        return stream.stream_items(chunk, choices, state)

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return errors.map_error(status, headers, raw)


ADAPTER: Adapter[DeepSeekStreamState] = DeepSeekAdapter()
