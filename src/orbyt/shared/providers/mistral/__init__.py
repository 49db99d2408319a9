"""Mistral La Plateforme chat completions (`POST {base_url}/v1/chat/completions`, Bearer).

Mistral speaks a near-OpenAI dialect but validates strictly (unknown fields are a 422).

Request mapping (OpenAI field -> Mistral):

- `model`: the upstream id.
- role `developer` -> `system`; role `function` is rejected (`messages[i].role`).
- Message fields Mistral does not know are dropped: `name` on system/user/assistant
  messages, assistant `refusal`, `annotations`, `audio`, `function_call` and
  `reasoning_content` (Mistral forbids extra fields).
- `tool_calls[].id` and `tool_call_id`: kept when they match `[a-zA-Z0-9]{9}`, otherwise
  rewritten to 9 base62 chars of SHA-256(id) in both places, so the pairs still match.
- Parts: `text`, `image_url` as is; `input_audio {data, format}` -> `input_audio: data`;
  `file {file_id}` -> `file_id` (`file_data` is rejected).
- `seed` -> `random_seed`; `max_completion_tokens` -> `max_tokens` (wins when both set).
- `tool_choice: "required"` -> `"any"` (every Mistral API version accepts `any`;
  `required` is a newer alias).
- As is: `n`, `stop`, `tools`, `tool_choice` (other values), `parallel_tool_calls`,
  `response_format`, `reasoning_effort`, `prediction`, `prompt_cache_key`, `metadata`,
  `logprobs`, `top_logprobs`, `temperature`, `top_p`, penalties, `max_tokens`, `stream`.
- Dropped: `user`, `safety_identifier`, `logit_bias`, `stream_options` (usage always
  rides on the finish chunk), `store`, `service_tier` (different tiers), `verbosity`,
  `modalities: ["text"]`.
- Rejected (`InvalidRequest`, param = the field): `audio`, other `modalities`,
  `web_search_options`, `functions`, `function_call`.
- Anything else (`safe_prompt`, `top_k`, `min_tokens`, `prompt_mode`, ...) passes through.

Responses: a `content` list of chunks (Magistral) is flattened: text chunks become
`content`, thinking chunks `reasoning_content`. `finish_reason` `model_length` becomes
`length`; `error` raises a retryable 502 (in a stream too). Tool-call `arguments` that
arrive as an object are JSON-encoded. Streams carry `usage` on the finish chunk; it is
split off into a separate `{"choices": [], "usage": ...}` item. Each streamed tool call
(whole, with an `id`) gets the next OpenAI `index` of its choice, `type: "function"` and
an `id`.

Errors: Mistral's flat `{"object": "error", "message", "type", "code", "raw_status_code"}`
body, FastAPI's 422 `{"detail": [...]}` (never echoing `input`) and non-JSON bodies all
become an `UpstreamError` whose message starts with "mistral: ".

Embeddings (`mistral-embed`): `embeddings.py`, mapping table there.

Modules: `request`, `response`, `stream` (`MistralStreamState`), `errors`, `embeddings`;
the adapter is `OpenAIDialect` with those hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.base import Adapter, Json, Target, UpstreamRequest
from orbyt.shared.providers.mistral import embeddings, errors, request, response, stream
from orbyt.shared.providers.mistral.request import mistral_tool_id
from orbyt.shared.providers.mistral.stream import MistralStreamState
from orbyt.shared.providers.openai.dialect import OpenAIDialect
from orbyt.shared.providers.openai.embeddings import parse_embeddings_response

__all__ = ["ADAPTER", "MistralAdapter", "MistralStreamState", "mistral_tool_id"]


class MistralAdapter(OpenAIDialect[MistralStreamState]):
    name: ClassVar[str] = errors.PROVIDER
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__MISTRAL__KEYS"
    default_base_url: ClassVar[str] = "https://api.mistral.ai"
    embeddings_tokens: ClassVar[bool] = False

    def url(self, base_url: str) -> str:
        return request.url(base_url)

    def payload(self, body: Json, target: Target) -> Json:
        return request.payload(body, target)

    def body_error(self, body: Json) -> UpstreamError | None:
        return errors.body_error(body)

    def translate_response(self, body: Json, choices: list[Any]) -> Json:
        return response.translate(body, choices)

    def new_stream_state(self, body: Json, target: Target) -> MistralStreamState:
        return MistralStreamState()

    def chunk_error(self, chunk: Json, state: MistralStreamState) -> UpstreamError | None:
        return stream.chunk_error(chunk, state)

    def stream_items(
        self, chunk: Json, choices: list[Any], state: MistralStreamState
    ) -> list[Json]:
        return stream.stream_items(chunk, choices, state)

    def build_embeddings_request(self, body: Json, target: Target) -> UpstreamRequest:
        return embeddings.build_embeddings_request(body, target)

    def parse_embeddings_response(self, raw: bytes, target: Target) -> Json:
        return parse_embeddings_response(self.name, raw)

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return errors.map_error(status, headers, raw)


ADAPTER: Adapter[MistralStreamState] = MistralAdapter()
