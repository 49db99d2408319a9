"""`OpenAIDialect`: the base of every adapter whose upstream speaks OpenAI's Chat Completions.

OpenAI itself (and any OpenAI-compatible upstream declared in configuration), Mistral,
DeepSeek and the built-in mock extend it. The adapter methods are fixed skeletons; a
dialect overrides only the hooks where it differs, and the defaults are OpenAI's own
behaviour:

    role       skeleton                   hooks (default)
    request    build_request              url (`{base}/chat/completions`), payload
                                          (`openai_payload`: pass-through, stream usage on)
    response   parse_response             body_error (none), translate_response
                                          (`openai_response`)
    stream     parse_event                new_stream_state (abstract), chunk_error
                                          (`openai_chunk_error`), stream_items
                                          (`openai_stream_items`); strip_event_data
    errors     map_error                  (`map_openai_error`)

`OpenAIAdapter` (`ADAPTER`) is OpenAI's own: the dialect with its defaults, plus the
embeddings role (`embeddings.py`).

The stream skeleton skips blank events, marks `[DONE]`, and skips (counting them in
`state.malformed`) events that are not a JSON object with a `choices` list; a non-stream
body that is not one is a 502.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.base import Adapter, Json, StateT, StreamState, Target, UpstreamRequest
from orbyt.shared.providers.openai import embeddings
from orbyt.shared.providers.openai.errors import map_openai_error, openai_chunk_error
from orbyt.shared.providers.openai.request import json_post, openai_payload
from orbyt.shared.providers.openai.response import loads_object, malformed, openai_response
from orbyt.shared.providers.openai.stream import chunk_choices, load_chunk, openai_stream_items
from orbyt.shared.sse import SSEEvent


class OpenAIDialect(ABC, Generic[StateT]):
    """An `Adapter[StateT]` for an OpenAI-shaped upstream; see the module docstring."""

    name: ClassVar[str]
    key_env: ClassVar[str]
    default_base_url: ClassVar[str]
    needs_key: ClassVar[bool] = True
    # Event data is stripped before the `[DONE]` check (Mistral and DeepSeek pad it); OpenAI
    # takes it verbatim.
    strip_event_data: ClassVar[bool] = True

    # -- request

    def build_request(self, body: Json, target: Target) -> UpstreamRequest:
        return json_post(self.url(target.base_url), self.payload(body, target), target.api_key)

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + "/chat/completions"

    def payload(self, body: Json, target: Target) -> Json:
        return openai_payload(body, target)

    # -- response

    def parse_response(self, raw: bytes, target: Target) -> Json:
        body = loads_object(raw.strip())  # some upstreams send keep-alive blank lines first
        if body is None:
            raise malformed(self.name)
        error = self.body_error(body)
        if error is not None:
            raise error
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise malformed(self.name)
        return self.translate_response(body, choices)

    def body_error(self, body: Json) -> UpstreamError | None:
        """The error a 200 body carries, or None (OpenAI never sends one)."""
        return None

    def translate_response(self, body: Json, choices: list[Any]) -> Json:
        return openai_response(body, choices)

    # -- stream

    @abstractmethod
    def new_stream_state(self, body: Json, target: Target) -> StateT: ...

    def parse_event(self, event: SSEEvent, state: StateT) -> list[Json]:
        stripped = event.data.strip()
        if not stripped:  # keep-alive: blank data is skipped
            return []
        data = stripped if self.strip_event_data else event.data
        if data.startswith("[DONE]"):
            state.done = True
            return []
        chunk = load_chunk(data, state)
        if chunk is None:
            return []
        error = self.chunk_error(chunk, state)
        if error is not None:
            raise error
        choices = chunk_choices(chunk, state)
        if choices is None:
            return []
        return self.stream_items(chunk, choices, state)

    def chunk_error(self, chunk: Json, state: StateT) -> UpstreamError | None:
        """The error a stream chunk carries, or None."""
        return openai_chunk_error(self.name, chunk)

    def stream_items(self, chunk: Json, choices: list[Any], state: StateT) -> list[Json]:
        return openai_stream_items(chunk, choices, state)

    # -- errors

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return map_openai_error(self.name, status, headers, raw)


class OpenAIAdapter(OpenAIDialect[StreamState]):
    name: ClassVar[str] = "openai"
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__OPENAI__KEYS"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    strip_event_data: ClassVar[bool] = False
    embeddings_tokens: ClassVar[bool] = True

    def build_embeddings_request(self, body: Json, target: Target) -> UpstreamRequest:
        return embeddings.build_embeddings_request(body, target)

    def parse_embeddings_response(self, raw: bytes, target: Target) -> Json:
        return embeddings.parse_embeddings_response(self.name, raw)

    def new_stream_state(self, body: Json, target: Target) -> StreamState:
        return StreamState()


ADAPTER: Adapter[StreamState] = OpenAIAdapter()
