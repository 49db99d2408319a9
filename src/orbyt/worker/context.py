"""What every job of one worker process shares: settings, catalog, the upstream client, the
route health, the publisher connection, the running jobs. Built once per process from the
settings given to `build_worker`; arq's own `ctx` dict is not used."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import start_http_server
from redis.asyncio import Redis

from orbyt.shared.catalog import Catalog, catalog_for
from orbyt.shared.resp import PipelinedConnection
from orbyt.shared.settings import Settings
from orbyt.worker.health import Health
from orbyt.worker.jobs import Jobs
from orbyt.worker.upstream import Upstream

log = logging.getLogger("orbyt.worker")


@dataclass
class WorkerContext:
    settings: Settings
    catalog: Catalog
    client: Upstream
    health: Health
    redis: Redis
    publisher: PipelinedConnection  # the pipelined RESP connection reply frames go out on
    worker_id: str
    jobs: Jobs = field(default_factory=Jobs)
    rand: random.Random = field(default_factory=random.Random)
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    def create(cls, settings: Settings, redis: Redis) -> WorkerContext:
        return cls(
            settings=settings,
            catalog=catalog_for(settings),
            client=Upstream(settings),
            health=Health(redis, settings.breaker_failures, settings.breaker_cooldown),
            redis=redis,
            publisher=PipelinedConnection(
                settings.redis_url, coalesce=settings.publish_coalesce_ms / 1000
            ),
            worker_id=f"{socket.gethostname()}:{os.getpid()}",
        )

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        await self.client.aclose()
        await self.publisher.close()


def serve_metrics(settings: Settings) -> None:
    """Expose the worker's Prometheus metrics, if a port is configured."""
    if not settings.worker_metrics_port:
        return
    try:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    except OSError as exc:  # several workers on one host: give each its own port
        log.warning(
            "worker metrics port %d unavailable (%s)", settings.worker_metrics_port, exc.strerror
        )
