"""redis-py clients (and arq's pool) built from `RedisOptions`, and the master address the
fast connection dials: the server itself, or whatever Sentinel names as master right now
(asked again on every reconnect, so a failover is followed)."""

from __future__ import annotations

from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from orbyt.shared.redis.options import RedisOptions, parse

R = TypeVar("R", bound=Redis)


def options(url_or_options: str | RedisOptions) -> RedisOptions:
    return parse(url_or_options) if isinstance(url_or_options, str) else url_or_options


def sentinel_manager(opts: RedisOptions, **extra: Any) -> Sentinel:
    """redis-py's Sentinel: sentinels with their own credentials, the master with the URL's."""
    return Sentinel(  # type: ignore[no-untyped-call]
        list(opts.hosts),
        sentinel_kwargs=opts.sentinel_kwargs(),
        **(opts.connection_kwargs() | extra),
    )


def client(url_or_options: str | RedisOptions, redis_class: type[R] = Redis, **extra: Any) -> R:  # type: ignore[assignment]
    """A redis-py client (or subclass such as arq's `ArqRedis`) for one role's URL.
    `extra` adds client options, e.g. `max_connections`."""
    opts = options(url_or_options)
    if opts.sentinel_service is not None:
        manager = sentinel_manager(opts, **extra)
        master: R = manager.master_for(opts.sentinel_service, redis_class=redis_class)
        return master
    host, port = opts.hosts[0]
    return redis_class(host=host, port=port, **(opts.connection_kwargs() | extra))


async def master_address(opts: RedisOptions, manager: Sentinel | None) -> tuple[str, int]:
    """Where the server (or the current master) is; `manager` is the role's Sentinel."""
    if opts.sentinel_service is None or manager is None:
        return opts.hosts[0]
    host, port = await manager.discover_master(opts.sentinel_service)
    return str(host), int(port)
