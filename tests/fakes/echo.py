"""Echoing the caller's key back, as a careless upstream (or a proxy in front of one) does.

An error body (dict or str), the error's headers and an in-stream error payload
(`Reply.error_body`) may hold placeholders that the fake replaces with the API key of the
request being answered, in one form each:

    ${key}          the key as sent            ${key_prefix}  its first 24 characters
    ${key_b64}      base64                     ${key_b64url}  URL-safe base64, unpadded
    ${key_b64_1}    base64 of ":" + key        ${key_b64_2}   base64 of "k:" + key
    ${key_url}      URL-encoded                ${key_hex}     hex

(`${key_b64_1}` and `${key_b64_2}` put the key at the other two byte alignments, as in a
base64-encoded `Authorization` header.) Text without placeholders is left as it is.
"""

from __future__ import annotations

import base64
import re
import urllib.parse

_PLACEHOLDER = re.compile(r"\$\{(key(?:_[a-z0-9_]+)?)\}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_forms(key: str) -> dict[str, str]:
    """Placeholder name -> the key in that form."""
    raw = key.encode()
    return {
        "key": key,
        "key_prefix": key[:24],
        "key_b64": _b64(raw),
        "key_b64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "key_b64_1": _b64(b":" + raw),
        "key_b64_2": _b64(b"k:" + raw),
        "key_url": urllib.parse.quote(key, safe=""),
        "key_hex": raw.hex(),
    }


def echo_key(text: str, key: str | None) -> str:
    """`text` with its placeholders replaced by forms of `key` (unknown ones left as is)."""
    if "${key" not in text:
        return text
    forms = key_forms(key or "")
    return _PLACEHOLDER.sub(lambda m: forms.get(m.group(1), m.group()), text)


def echo_key_bytes(data: bytes, key: str | None) -> bytes:
    if b"${key" not in data:
        return data
    return echo_key(data.decode(), key).encode()
