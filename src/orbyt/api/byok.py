"""BYOK on the API side: check the caller's keys and seal them into the side-car that is
written with the job (`shared.redis.queue.enqueue`; DESIGN §5).

Key shape checks (PROVIDERS.md §7): key formats change, so they are strict only where a
shape is unambiguous — a key that is distinctively another provider's, or a kind of key
that cannot call inference. Messages name the provider and the shape, never the key.
"""

from __future__ import annotations

import re

from orbyt.shared.contract import Candidate, byok_key
from orbyt.shared.errors import InvalidRequest, ServiceUnavailable
from orbyt.shared.secret import seal
from orbyt.shared.settings import Settings
from orbyt.shared.wire import Extra

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


def byok_map(extra: Extra, plan: list[Candidate]) -> dict[str, str]:
    """provider -> key, from a string (primary's provider) or a {provider: key} object."""
    assert extra.byok is not None
    byok = extra.byok
    keys = {plan[0]["provider"]: byok} if isinstance(byok, str) else dict(byok)
    for provider, key in keys.items():
        problem = key_shape_problem(provider, key)
        if problem:
            raise InvalidRequest(
                f"The BYOK key for {provider!r} {problem}.",
                param="extra.byok",
                code="invalid_byok_key",
            )
    return keys


def seal_sidecar(settings: Settings, rid: str, keys: dict[str, str]) -> tuple[str, bytes, int]:
    """(side-car key, sealed blob, TTL ms): written with the job, before it can be picked."""
    if not settings.secret_key:
        raise ServiceUnavailable(
            "BYOK is not enabled on this gateway (ORBYT_SECRET_KEY is not set).",
            code="byok_disabled",
        )
    blob = seal(keys, settings.secret_key.get_secret_value(), rid)
    return byok_key(rid), blob, int(settings.byok_ttl * 1000)
