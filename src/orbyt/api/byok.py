"""BYOK on the API side: validate the caller's keys and seal them into the side-car that is
written with the job (`api.queue.enqueue`; DESIGN §5)."""

from __future__ import annotations

from orbyt.api.keyshapes import key_shape_problem
from orbyt.shared.contract import Candidate, byok_key
from orbyt.shared.errors import InvalidRequest, ServiceUnavailable
from orbyt.shared.sealing import seal
from orbyt.shared.settings import Settings
from orbyt.shared.wire import Extra


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
