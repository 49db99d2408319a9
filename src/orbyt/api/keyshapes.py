"""Sanity checks of caller-supplied provider keys (PROVIDERS.md §7).

Key formats change, so this is strict only where a shape is unambiguous: a key that is
distinctively another provider's, or a kind of key that cannot call inference. Messages
name the provider and the shape, never the key.
"""

from __future__ import annotations

import re

_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("anthropic", re.compile(r"^sk-ant-")),
    ("google", re.compile(r"^(AIza[0-9A-Za-z_-]{35}|AQ\.[0-9A-Za-z._-]+)$")),
]
_NOT_INFERENCE = [
    ("anthropic", re.compile(r"^sk-ant-(admin01|oat01)-"), "an Anthropic admin or OAuth token"),
    ("openai", re.compile(r"^sk-admin-"), "an OpenAI admin key"),
]
_PRINTABLE = re.compile(r"[\x21-\x7e]{8,512}")  # fullmatch: `$` would let "key\n" pass


def key_shape_problem(provider: str, key: str) -> str | None:
    """None if the key may belong to `provider`; else why it cannot (without the key)."""
    if not _PRINTABLE.fullmatch(key):
        return "must be 8 to 512 printable characters without spaces"
    for _owner, pattern, what in _NOT_INFERENCE:
        if pattern.match(key):
            return f"looks like {what}, which cannot call the chat API"
    for owner, pattern in _SHAPES:
        if pattern.match(key) and owner != provider:
            return f"looks like a {owner} key, not a {provider} key"
    if provider == "anthropic" and not key.startswith("sk-ant-"):
        return "is not an Anthropic API key (they start with 'sk-ant-')"
    return None
