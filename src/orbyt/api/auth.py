"""Who is calling and with which keys: gateway-key authentication and per-key limits,
enforced across replicas; the caller's own provider keys (BYOK) checked and sealed.

Gateway keys come from Redis (`orbyt keys create`, the admin API) or, for simple setups,
from `ORBYT_GATEWAY_KEYS` (unlimited, pool allowed). Only hashes are stored or compared, in
constant time. One Lua round trip looks a Redis key up and applies its RPM and concurrency
limits atomically, so limits hold across any number of API replicas.

BYOK keys are sealed into the side-car written with the job (`shared.redis.queue.enqueue`;
DESIGN §5). Key shape checks (PROVIDERS.md §7): key formats change, so they are strict only
where a shape is unambiguous — a key that is distinctively another provider's, or a kind of
key that cannot call inference. Messages name the provider and the shape, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from orbyt.shared.contract import Candidate, byok_key
from orbyt.shared.errors import (
    AuthenticationFailed,
    InvalidRequest,
    RateLimited,
    ServiceUnavailable,
)
from orbyt.shared.secret import seal
from orbyt.shared.settings import Settings
from orbyt.shared.wire import Extra

PREFIX = "sk-or-v1-"  # every gateway key Orbyt issues starts with it


def hash_key(key: str) -> str:
    """What is stored and compared for a gateway key (never the key itself)."""
    return hashlib.sha256(key.encode()).hexdigest()


# KEYS: none (names are derived from the key hash; standalone Redis / Sentinel).
# ARGV: key hash, now_ms, request id, hold_until_ms, apply limits (1/0).
# Returns {code, id, pool, retry_ms, slot, name}: code 0 ok, 1 unknown, 2 revoked, 3 rpm,
# 4 concurrency; slot = 1 when a concurrency slot was taken (release it at the end).
_AUTH = """
local h = redis.call('HMGET', 'orbyt:gk:' .. ARGV[1], 'id', 'rpm', 'concurrency', 'pool', 'revoked',
  'name')
if not h[1] then return {1, '', 0, 0, 0} end
if h[5] == '1' then return {2, h[1], 0, 0, 0} end
local now = tonumber(ARGV[2])
if ARGV[5] ~= '1' then return {0, h[1], h[4] == '1' and 1 or 0, 0, 0, h[6] or ''} end
local rpm = tonumber(h[2] or '0')
if rpm > 0 then
  local window = math.floor(now / 60000)
  local rk = 'orbyt:rl:' .. h[1] .. ':' .. window
  local n = redis.call('INCR', rk)
  if n == 1 then redis.call('PEXPIRE', rk, 120000) end
  if n > rpm then return {3, h[1], 0, (window + 1) * 60000 - now, 0} end
end
local conc = tonumber(h[3] or '0')
local slot = 0
if conc > 0 then
  local ck = 'orbyt:cc:' .. h[1]
  redis.call('ZREMRANGEBYSCORE', ck, '-inf', now)
  if redis.call('ZCARD', ck) >= conc then return {4, h[1], 0, 1000, 0} end
  redis.call('ZADD', ck, tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', ck, 3600000)
  slot = 1
end
return {0, h[1], h[4] == '1' and 1 or 0, 0, slot, h[6] or ''}
"""


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    pool_allowed: bool
    holds_slot: bool  # a concurrency slot to release when the request ends
    name: str = ""  # the key's name (`orbyt keys create NAME`), for the access log


def bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationFailed("Missing API key. Send 'Authorization: Bearer <key>'.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("Malformed Authorization header; expected 'Bearer <key>'.")
    return token


class Authenticator:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._static = [hash_key(k.get_secret_value()) for k in settings.gateway_keys]
        self._redis = redis
        self._script = redis.register_script(_AUTH)

    def _static_match(self, digest: str) -> bool:
        match = False
        for known in self._static:  # no early exit: constant time over the list
            match |= hmac.compare_digest(digest, known)
        return match

    async def authenticate(
        self, authorization: str | None, rid: str = "", hold_for: float = 0.0, limits: bool = True
    ) -> Principal:
        token = bearer(authorization)
        digest = hash_key(token)
        if self._static_match(digest):
            key_id = "env_" + hashlib.sha256(digest.encode()).hexdigest()[:12]
            return Principal(key_id, True, False, "env")
        if not token.startswith(PREFIX):
            raise AuthenticationFailed("Incorrect API key provided.")
        now = int(time.time() * 1000)
        found = await self._script(
            args=[digest, now, rid or "-", now + int(hold_for * 1000), 1 if limits else 0]
        )
        code, key_id, pool, retry_ms, slot = found[:5]
        key_id = key_id.decode() if isinstance(key_id, bytes) else str(key_id)
        if code in (1, 2):
            raise AuthenticationFailed(
                "Incorrect API key provided." if code == 1 else "This API key has been revoked."
            )
        if code in (3, 4):
            seconds = max(1, -(-int(retry_ms) // 1000))
            what = "requests per minute" if code == 3 else "concurrent requests"
            raise RateLimited(
                f"Rate limit reached for this key ({what}).", headers={"retry-after": str(seconds)}
            )
        name = found[5] if len(found) > 5 else b""
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return Principal(key_id, bool(pool), bool(slot), name[:64])

    async def release(self, principal: Principal, rid: str) -> None:
        if principal.holds_slot:
            await self._redis.zrem(f"orbyt:cc:{principal.key_id}", rid)


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
