"""Taking a request's BYOK keys out of Redis: read once (GETDEL), unsealed in memory only."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.contract import byok_key
from shared.errors import Disposition, UpstreamError
from shared.sealing import SealError, unseal
from shared.secret import Secret
from shared.settings import Settings


def _unavailable(reason: str) -> UpstreamError:
    return UpstreamError(f"The BYOK key for this request is {reason}; send the request again.",
                         status=400, disposition=Disposition.FINAL, code="byok_key_unavailable")


async def take_byok(redis: Redis, settings: Settings, rid: str) -> dict[str, Secret]:
    blob = await redis.getdel(byok_key(rid))
    if blob is None:
        raise _unavailable("no longer available (expired, cancelled or already used)")
    try:
        return unseal(blob, settings.secrets(), rid)
    except SealError:
        raise _unavailable("unreadable by this worker (ORBYT_SECRET_KEY differs from the API's)"
                           ) from None
