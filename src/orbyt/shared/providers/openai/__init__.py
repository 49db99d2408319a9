"""OpenAI Chat Completions (also any OpenAI-compatible upstream declared in configuration).

Every OpenAI field is passed through unchanged except Orbyt's own `extra`; `model` is
replaced with the upstream id. Streams always ask for usage upstream so the gateway can
account for it; the caller only gets the usage chunk if it asked for one.

The adapter is `OpenAIAdapter` (in `dialect.py`: `OpenAIDialect`, the base of every
OpenAI-shaped upstream, with its defaults); `request.py` (`openai_payload`),
`response.py`, `stream.py` and `errors.py` hold OpenAI's wire format and the helpers the
other dialects reuse; `embeddings.py` holds the embeddings role (`POST {base}/embeddings`,
token arrays taken).
"""

from __future__ import annotations

from orbyt.shared.providers.openai.dialect import ADAPTER, OpenAIAdapter, OpenAIDialect

__all__ = ["ADAPTER", "OpenAIAdapter", "OpenAIDialect"]
