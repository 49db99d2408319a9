"""OpenAI Chat Completions (also any OpenAI-compatible upstream declared in configuration).

Every OpenAI field is passed through unchanged except Orbyt's own `extra`; `model` is
replaced with the upstream id. Streams always ask for usage upstream so the gateway can
account for it; the caller only gets the usage chunk if it asked for one.

The adapter is `OpenAIDialect` (in `dialect.py`, the base of every OpenAI-shaped upstream)
with its defaults: `request.py` (`openai_payload`), `response.py`, `stream.py` and
`errors.py` hold OpenAI's wire format and the helpers the other dialects reuse.
"""

from __future__ import annotations

from typing import ClassVar

from orbyt.shared.providers.base import Adapter, Json, StreamState, Target
from orbyt.shared.providers.openai.dialect import OpenAIDialect

__all__ = ["ADAPTER", "OpenAIAdapter", "OpenAIDialect"]


class OpenAIAdapter(OpenAIDialect[StreamState]):
    name: ClassVar[str] = "openai"
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__OPENAI__KEYS"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    strip_event_data: ClassVar[bool] = False

    def new_stream_state(self, body: Json, target: Target) -> StreamState:
        return StreamState()


ADAPTER: Adapter[StreamState] = OpenAIAdapter()
