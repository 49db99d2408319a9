"""The built-in `mock/...` provider: keyless, offline, deterministic.

It speaks OpenAI's wire format from inside the worker (an httpx transport on the
`mock://` scheme), so a first request works with no provider account and no network.
The answer is `max_tokens` (default 16) tokens: the words of the last user message
repeated, then `mock` filler. Delays come from settings (`ORBYT_MOCK__TTFT_MS`,
`ORBYT_MOCK__TOKEN_MS`). Besides `mock/echo` and `mock/echo-backup`, models that fail in
documented ways let you watch retries and fallbacks offline: `mock/flaky-503` (always 503),
`mock/rate-limited` (429 with `Retry-After: 1`), `mock/cut` (the stream drops half-way),
`mock/error-<status>`; any other `mock/...` model is a 404 `model_not_found`
(`upstream.py` has the list).

The adapter is OpenAI's (`openai.dialect`): request, response, stream and error mapping are
all inherited, so this provider has no role modules of its own; it serves no embeddings.
`upstream.py` is the other side of the wire: the in-process server that answers `mock://`
requests.
"""

from __future__ import annotations

from typing import ClassVar

from orbyt.shared.providers.base import Adapter, Json, StreamState, Target
from orbyt.shared.providers.mock.upstream import (
    MockCut,
    MockFailure,
    mock_completion,
    mock_cut_body,
    mock_error,
    mock_stream,
)
from orbyt.shared.providers.openai.dialect import OpenAIDialect

__all__ = [
    "ADAPTER",
    "MockAdapter",
    "MockCut",
    "MockFailure",
    "mock_completion",
    "mock_cut_body",
    "mock_error",
    "mock_stream",
]


class MockAdapter(OpenAIDialect[StreamState]):
    """OpenAI's wire format, served in-process on the `mock://` scheme; no key."""

    name: ClassVar[str] = "mock"
    key_env: ClassVar[str] = ""
    default_base_url: ClassVar[str] = "mock://mock"
    needs_key: ClassVar[bool] = False
    strip_event_data: ClassVar[bool] = False

    def new_stream_state(self, body: Json, target: Target) -> StreamState:
        return StreamState()


ADAPTER: Adapter[StreamState] = MockAdapter()
