"""Key material: `Secret`, a wrapper that never shows itself, and the sealing of BYOK keys
for their few seconds in Redis (DESIGN §5).

Sealing: AES-256-GCM under a key derived from `ORBYT_SECRET_KEY`, with the request id as associated
data (a sealed blob cannot be replayed under another request). The blob starts with a key
id so the secret can be rotated: seal with the current secret, open with the current or
any of `ORBYT_OLD_SECRET_KEYS`.

    blob = b"v1." + key_id (8 hex) + b"." + nonce (12 bytes) + ciphertext+tag
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import NoReturn

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Secret:
    """Holds a key in memory. `repr`/`str` are `***`; it refuses pickling and JSON."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __json__(self) -> NoReturn:  # pragma: no cover - marker for custom encoders
        raise TypeError("Secret values cannot be serialised")


VERSION = b"v1."
MIN_SECRET_CHARS = 32


class SealError(Exception):
    """The blob cannot be opened (wrong secret, tampered, other request)."""


def _derive(secret: str) -> tuple[bytes, bytes]:
    key = hashlib.sha256(b"orbyt-byok-v1\x00" + secret.encode()).digest()
    key_id = hashlib.sha256(b"orbyt-key-id\x00" + key).hexdigest()[:8].encode()
    return key_id, key


def weak_secret_reason(secret: str | None) -> str | None:
    if not secret:
        return "ORBYT_SECRET_KEY is not set"
    if len(secret) < MIN_SECRET_CHARS or len(set(secret)) < 10:
        return f"ORBYT_SECRET_KEY is too weak (use at least {MIN_SECRET_CHARS} random characters)"
    return None


def seal(keys: dict[str, str], secret: str, rid: str) -> bytes:
    key_id, key = _derive(secret)
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(keys), rid.encode())
    return VERSION + key_id + b"." + nonce + sealed


def unseal(blob: bytes, secrets: Iterable[str], rid: str) -> dict[str, Secret]:
    if not blob.startswith(VERSION) or len(blob) < len(VERSION) + 9 + 12 + 16:
        raise SealError("not a sealed BYOK blob")
    key_id = blob[len(VERSION) : len(VERSION) + 8]
    nonce = blob[len(VERSION) + 9 : len(VERSION) + 21]
    for secret in secrets:
        kid, key = _derive(secret)
        if kid != key_id:
            continue
        try:
            plain = AESGCM(key).decrypt(nonce, blob[len(VERSION) + 21 :], rid.encode())
        except Exception:
            raise SealError("sealed BYOK blob failed authentication") from None
        data = orjson.loads(plain)
        return {str(p): Secret(str(k)) for p, k in data.items()}
    raise SealError("no configured secret matches the sealed blob's key id")
