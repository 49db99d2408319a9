"""Taking a request's BYOK keys out of Redis: read once (GETDEL), unsealed in memory only;
and keeping a provider that quotes a key back from making the gateway repeat it."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from orbyt.shared.contract import byok_key
from orbyt.shared.errors import Disposition, OrbytError, UpstreamError
from orbyt.shared.sealing import SealError, unseal
from orbyt.shared.secret import Secret
from orbyt.shared.settings import Settings


def _unavailable(reason: str) -> UpstreamError:
    return UpstreamError(
        f"The BYOK key for this request is {reason}; send the request again.",
        status=400,
        disposition=Disposition.FINAL,
        code="byok_key_unavailable",
    )


async def take_byok(redis: Redis, settings: Settings, rid: str) -> dict[str, Secret]:
    blob = await redis.getdel(byok_key(rid))
    if blob is None:
        raise _unavailable("no longer available (expired, cancelled or already used)")
    try:
        return unseal(blob, settings.secrets(), rid)
    except SealError:
        raise _unavailable(
            "unreadable by this worker (ORBYT_SECRET_KEY differs from the API's)"
        ) from None


MIN_SCRUB_CHARS = 8  # shorter "keys" (test stubs) would mask ordinary words


def scrub(text: str, keys: Iterable[Secret | None]) -> str:
    """`text` with every occurrence of any of `keys` replaced by `***`."""
    for key in keys:
        value = key.reveal() if key is not None else ""
        if len(value) >= MIN_SCRUB_CHARS and value in text:
            text = text.replace(value, "***")
    return text


def scrub_error(err: OrbytError, keys: Secret | Iterable[Secret | None] | None) -> OrbytError:
    """Remove the keys from an error built from a provider's answer (some providers, and
    proxies in front of them, quote the key they rejected), in place; returns `err`.
    Everything the caller, the reply frames or a log line could show is covered."""
    secrets = [keys] if keys is None or isinstance(keys, Secret) else list(keys)
    err.message = scrub(err.message, secrets)
    err.args = (err.message,)
    if err.param is not None:
        err.param = scrub(err.param, secrets)
    if isinstance(err.code, str):
        err.code = scrub(err.code, secrets)
    err.headers = {k: scrub(v, secrets) for k, v in err.headers.items()}
    return err
