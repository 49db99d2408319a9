"""Sealing BYOK keys for their few seconds in Redis (DESIGN §5).

AES-256-GCM under a key derived from `ORBYT_SECRET_KEY`, with the request id as associated
data (a sealed blob cannot be replayed under another request). The blob starts with a key
id so the secret can be rotated: seal with the current secret, open with the current or
any of `ORBYT_OLD_SECRET_KEYS`.

    blob = b"v1." + key_id (8 hex) + b"." + nonce (12 bytes) + ciphertext+tag
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orbyt.shared.secret import Secret

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
