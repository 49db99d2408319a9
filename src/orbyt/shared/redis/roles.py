"""Which Redis each use goes to. Two roles, each its own URL (DESIGN §1):

- state (`ORBYT_REDIS_URL`): gateway keys, usage, route health (breakers, statistics,
  pool-key cooldowns), batches, stored responses. Durable: run it with AOF.
- queue (`ORBYT_QUEUE_REDIS_URL`, default: the state URL): jobs, reply channels, wake-ups,
  cancels, BYOK side-cars, worker health records. Ephemeral: run it without persistence,
  so a BYOK key can never reach a disk.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from orbyt.shared.redis.clients import client
from orbyt.shared.redis.link import Liveness
from orbyt.shared.settings import Settings


def state_url(settings: Settings) -> str:
    return settings.redis_url


def queue_url(settings: Settings) -> str:
    return settings.queue_redis_url or settings.redis_url


def shared(settings: Settings) -> bool:
    """Whether both roles are one Redis (`orbyt dev`, small installs)."""
    return queue_url(settings) == state_url(settings)


def liveness(settings: Settings) -> Liveness:
    return Liveness(
        ping_interval=settings.redis_ping_interval, dead_after=settings.redis_dead_after
    )


def state_client(settings: Settings, **extra: Any) -> Redis:
    redis: Redis = client(state_url(settings), **extra)
    return redis


def queue_client(settings: Settings, **extra: Any) -> Redis:
    redis: Redis = client(queue_url(settings), **extra)
    return redis
