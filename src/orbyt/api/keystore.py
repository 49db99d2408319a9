"""Gateway keys in Redis (DESIGN §9): random `sk-or-v1-…` keys, shown once, stored only as
SHA-256 hashes, with a name, optional requests-per-minute and concurrency limits and a
pool permission. Revocation is a field on the hash, read on every request by every replica.

    orbyt:gk:{sha256(key)}   hash  id, name, rpm, concurrency, pool, created, revoked, hint
                             (hint: the key's last 4 characters, to tell keys apart)
    orbyt:gkid:{id}          string  sha256(key)   (admin look-ups by id)
    orbyt:gkids              set of ids
"""

from __future__ import annotations

import secrets
import time
import unicodedata
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from orbyt.api.auth import PREFIX, hash_key


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a key, or None. Names show up in log lines, CLI tables and the
    console: control and format characters (CR/LF, NUL, bidi overrides) are refused."""
    for ch in name:
        if unicodedata.category(ch).startswith("C"):
            return f"a key name may not hold control or format characters (U+{ord(ch):04X})"
    return None


@dataclass(frozen=True, slots=True)
class GatewayKey:
    id: str
    name: str
    rpm: int  # 0 = unlimited
    concurrency: int  # 0 = unlimited
    pool: bool  # may use the gateway's own provider keys
    created: int
    revoked: bool = False
    hint: str = ""  # the key's last 4 characters (keys created before hints: empty)

    def public(self) -> dict[str, object]:
        return asdict(self)


def _from_hash(raw: dict[bytes, bytes]) -> GatewayKey:
    def s(name: str) -> str:
        return raw.get(name.encode(), b"").decode()

    return GatewayKey(
        id=s("id"),
        name=s("name"),
        rpm=int(s("rpm") or 0),
        concurrency=int(s("concurrency") or 0),
        pool=s("pool") == "1",
        created=int(s("created") or 0),
        revoked=s("revoked") == "1",
        hint=s("hint"),
    )


class KeyStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def create(
        self, name: str, rpm: int = 0, concurrency: int = 0, pool: bool = True
    ) -> tuple[str, GatewayKey]:
        """Returns (the key, shown this once, and its record)."""
        key = PREFIX + secrets.token_hex(32)  # 256 bits
        record = GatewayKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            rpm=rpm,
            concurrency=concurrency,
            pool=pool,
            created=int(time.time()),
            hint=key[-4:],
        )
        digest = hash_key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                f"orbyt:gk:{digest}",
                mapping={
                    "id": record.id,
                    "name": name,
                    "rpm": rpm,
                    "concurrency": concurrency,
                    "pool": "1" if pool else "0",
                    "created": record.created,
                    "revoked": "0",
                    "hint": record.hint,
                },
            )
            pipe.set(f"orbyt:gkid:{record.id}", digest)
            pipe.sadd("orbyt:gkids", record.id)
            await pipe.execute()
        return key, record

    async def lookup(self, key: str) -> GatewayKey | None:
        raw = await self._redis.hgetall(f"orbyt:gk:{hash_key(key)}")  # type: ignore[misc]
        return _from_hash(raw) if raw else None

    async def get(self, key_id: str) -> GatewayKey | None:
        digest = await self._redis.get(f"orbyt:gkid:{key_id}")
        if digest is None:
            return None
        raw = await self._redis.hgetall(f"orbyt:gk:{digest.decode()}")  # type: ignore[misc]
        return _from_hash(raw) if raw else None

    async def list(self) -> list[GatewayKey]:
        """Every key's record, in id order, in two round trips."""
        ids = sorted(i.decode() for i in await self._redis.smembers("orbyt:gkids"))  # type: ignore[misc]
        if not ids:
            return []
        digests = await self._redis.mget([f"orbyt:gkid:{i}" for i in ids])
        async with self._redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                if digest is not None:
                    pipe.hgetall(f"orbyt:gk:{digest.decode()}")
            raws = await pipe.execute()
        return [_from_hash(raw) for raw in raws if raw]

    async def update(
        self,
        key_id: str,
        rpm: int | None = None,
        concurrency: int | None = None,
        pool: bool | None = None,
    ) -> GatewayKey | None:
        """Change a key's limits or pool permission (None = keep); in force on every replica
        at its next request. None if there is no such key."""
        digest = await self._redis.get(f"orbyt:gkid:{key_id}")
        if digest is None:
            return None
        changes: dict[str, str | int] = {}
        if rpm is not None:
            changes["rpm"] = rpm
        if concurrency is not None:
            changes["concurrency"] = concurrency
        if pool is not None:
            changes["pool"] = "1" if pool else "0"
        name = f"orbyt:gk:{digest.decode()}"
        if changes and await self._redis.exists(name):
            await self._redis.hset(name, mapping=changes)  # type: ignore[misc]
        return await self.get(key_id)

    async def revoke(self, key_id: str) -> bool:
        digest = await self._redis.get(f"orbyt:gkid:{key_id}")
        if digest is None:
            return False
        await self._redis.hset(f"orbyt:gk:{digest.decode()}", "revoked", "1")  # type: ignore[misc]
        return True
