"""OpenAI Chat Completions (also any OpenAI-compatible upstream declared in configuration).

Every OpenAI field is passed through unchanged except Orbyt's own `extra`; `model` is
replaced with the upstream id. Streams always ask for usage upstream so the gateway can
account for it; the caller only gets the usage chunk if it asked for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers._openai_compat import (
    GATEWAY_FIELDS,
    json_post,
    map_openai_error,
    parse_openai_event,
    parse_openai_response,
)
from orbyt.shared.providers.base import Json, StreamState, Target, UpstreamRequest
from orbyt.shared.sse import SSEEvent


class OpenAIAdapter:
    name: ClassVar[str] = "openai"
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__OPENAI__KEYS"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    needs_key: ClassVar[bool] = True

    def build_request(self, body: Json, target: Target) -> UpstreamRequest:
        payload = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS and v is not None}
        payload["model"] = target.upstream_model
        stream = bool(payload.get("stream"))
        if stream:
            options = dict(payload.get("stream_options") or {})
            options["include_usage"] = True
            payload["stream_options"] = options
        else:
            payload.pop("stream_options", None)
        return json_post(target.base_url.rstrip("/") + "/chat/completions", payload, target.api_key)

    def parse_response(self, raw: bytes, target: Target) -> Json:
        return parse_openai_response(self.name, raw)

    def new_stream_state(self, body: Json, target: Target) -> StreamState:
        return StreamState()

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[Json]:
        return parse_openai_event(self.name, event, state)

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return map_openai_error(self.name, status, headers, raw)


ADAPTER = OpenAIAdapter()
