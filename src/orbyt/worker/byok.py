"""Taking a request's BYOK keys out of Redis: read once (GETDEL), unsealed in memory only;
and keeping a provider that quotes a key back from making the gateway repeat it.

Scrubbing looks for every `SCRUB_WINDOW`-character window of a key in each form an
upstream or a proxy in front of it may use: plain, URL-encoded, hex (both cases) and base64
(standard and URL-safe, at each of the three byte alignments a key can have inside a
longer encoded blob). Any run of text made of such windows is masked, so a whole key, a
fragment of 24 characters or more, and any of those encodings of either are all caught.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from orbyt.shared.contract import byok_key
from orbyt.shared.errors import Disposition, OrbytError, UpstreamError
from orbyt.shared.secret import SealError, Secret, unseal


def unavailable(reason: str) -> UpstreamError:
    """The request's BYOK key cannot be used (final: never a silent switch to the pool)."""
    return UpstreamError(
        f"The BYOK key for this request is {reason}; send the request again.",
        status=400,
        disposition=Disposition.FINAL,
        code="byok_key_unavailable",
    )


async def take_byok(redis: Redis, secrets: Sequence[str], rid: str) -> dict[str, Secret]:
    """The request's BYOK keys, taken (GETDEL) and opened with `secrets` (current first)."""
    blob = await redis.getdel(byok_key(rid))
    if blob is None:
        raise unavailable("no longer available (expired, cancelled or already used)")
    try:
        return unseal(blob, secrets, rid)
    except SealError:
        raise unavailable(
            "unreadable by this worker (ORBYT_SECRET_KEY differs from the API's)"
        ) from None


MIN_SCRUB_CHARS = 8  # shorter "keys" (test stubs) would mask ordinary words
# Characters of an encoded key that, found in a text, mask it. A 24-character fragment
# must be caught in every form: 24 plain characters hold a 16-window; their base64 keeps
# at least 28 characters aligned with one of the key's own three encodings (only the
# partial 4-character groups at its ends differ); their hex is 48 characters. Shorter
# windows would start to match ordinary text: 16 characters of an encoded key carry at
# least 8 bytes of it, and even behind the longest public prefix (`sk-ant-api03-`) a plain
# window holds 3 random characters: ordinary text does not match one.
SCRUB_WINDOW = 16
MASK = "***"
_AUTH_STATUSES = (401, 403)
_PROVIDER_PREFIX = re.compile(r"[a-z][a-z0-9_-]{0,31}: ")


def _forms(value: str) -> list[str]:
    """The encodings of a key that are searched for."""
    raw = value.encode()
    hexed = binascii.hexlify(raw).decode()
    forms = [
        value,
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        hexed,
        hexed.upper(),
    ]
    for pad in range(3):  # the key at each alignment inside a longer base64 blob
        padded = b"\0" * pad + raw + b"\0\0"
        forms.append(base64.b64encode(padded)[4:-4].decode())
        forms.append(base64.urlsafe_b64encode(padded)[4:-4].decode())
    return forms


def _windows(values: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for value in values:
        for form in _forms(value):
            size = min(SCRUB_WINDOW, len(form))
            out.update(form[i : i + size] for i in range(len(form) - size + 1))
    return out


def _reveal(keys: Iterable[Secret | None]) -> list[str]:
    values = (k.reveal() for k in keys if k is not None)
    return [v for v in values if len(v) >= MIN_SCRUB_CHARS]


def _mask(text: str, windows: set[str], sizes: set[int]) -> str:
    """`text` with every run covered by windows replaced by one MASK."""
    spans: list[list[int]] = []
    for size in sizes:
        for i in range(len(text) - size + 1):
            if text[i : i + size] in windows:
                spans.append([i, i + size])
    if not spans:
        return text
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out += [text[pos:start], MASK]
        pos = end
    return "".join([*out, text[pos:]])


class _Scrubber:
    def __init__(self, keys: Iterable[Secret | None]) -> None:
        values = _reveal(keys)
        self.windows = _windows(values)
        self.sizes = {len(w) for w in self.windows}

    def __call__(self, text: str) -> str:
        return _mask(text, self.windows, self.sizes) if self.windows else text

    def value(self, value: object) -> object:
        """Strings, and strings inside dicts, lists and tuples; anything else as is."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value


def scrub(text: str, keys: Iterable[Secret | None]) -> str:
    """`text` with every occurrence of any of `keys` (whole, a fragment of SCRUB_WINDOW
    characters or more, plain or encoded) replaced by `***`."""
    return _Scrubber(keys)(text)


def byok_auth_message(err: OrbytError) -> str:
    """Orbyt's own text for a provider refusing the caller's key: the provider's may
    quote the key, masked in ways no scrubber can know."""
    prefix = _PROVIDER_PREFIX.match(err.message)
    who = prefix.group() if prefix else ""
    return (
        f"{who}{'the' if who else 'The'} provider refused the API key given in extra.byok "
        f"(HTTP {err.status}); check the key, its project and its permissions."
    )


def scrub_error(
    err: OrbytError, keys: Secret | Iterable[Secret | None] | None, *, byok: bool = False
) -> OrbytError:
    """Remove the keys from an error built from a provider's answer (some providers, and
    proxies in front of them, quote the key they rejected), in place; returns `err`.
    Every attribute the caller, the reply frames or a log line could show is covered
    (`message`, `type`, `param`, `code`, headers, args and any other text an error class
    carries); the exception chain is cut. `byok`: the key is the caller's own, and an
    authentication refusal (401/403) gets Orbyt's message, the provider's status and
    code kept."""
    secrets = [keys] if keys is None or isinstance(keys, Secret) else list(keys)
    clean = _Scrubber(secrets)
    if byok and err.status in _AUTH_STATUSES:
        err.message = byok_auth_message(err)
    for name, value in list(vars(err).items()):
        setattr(err, name, clean.value(value))
    err.type = clean(err.type)  # may be the class default, not an instance attribute
    if isinstance(err.code, str):
        err.code = clean(err.code)
    err.args = (err.message,)
    err.__cause__ = err.__context__ = None
    err.__suppress_context__ = True
    return err
