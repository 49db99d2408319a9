"""Gateway-key authentication: constant-time comparison of key hashes."""

from __future__ import annotations

import hashlib
import hmac

from shared.errors import AuthenticationFailed
from shared.settings import Settings


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Accepted gateway keys, held only as hashes."""

    def __init__(self, settings: Settings) -> None:
        self._hashes = [key_hash(k.get_secret_value()) for k in settings.gateway_keys]

    def authenticate(self, authorization: str | None) -> str:
        """Returns the key id (a hash prefix) or raises AuthenticationFailed."""
        if not authorization:
            raise AuthenticationFailed("Missing API key. Send 'Authorization: Bearer <key>'.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("Malformed Authorization header; expected 'Bearer <key>'.")
        digest = key_hash(token)
        match = False
        for known in self._hashes:
            match |= hmac.compare_digest(digest, known)
        if not match:
            raise AuthenticationFailed("Incorrect API key provided.")
        return digest[:16]
