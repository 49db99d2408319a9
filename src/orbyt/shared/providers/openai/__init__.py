"""OpenAI Chat Completions (also any OpenAI-compatible upstream declared in configuration).

Every OpenAI field is passed through unchanged except Orbyt's own `extra`; `model` is
replaced with the upstream id. Streams always ask for usage upstream so the gateway can
account for it; the caller only gets the usage chunk if it asked for one.

The adapter is `OpenAIDialect` (in `dialect.py`, the base of every OpenAI-shaped upstream)
with its defaults: `request.py` (`openai_payload`), `response.py`, `stream.py` and
`errors.py` hold OpenAI's wire format and the helpers the other dialects reuse;
`embeddings.py` holds the embeddings role (`POST {base}/embeddings`, token arrays taken).
"""

from __future__ import annotations

from typing import ClassVar

from orbyt.shared.providers.base import Adapter, Json, StreamState, Target, UpstreamRequest
from orbyt.shared.providers.openai import embeddings
from orbyt.shared.providers.openai.dialect import OpenAIDialect

__all__ = ["ADAPTER", "OpenAIAdapter", "OpenAIDialect"]


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
