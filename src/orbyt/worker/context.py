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
from functools import cached_property
from typing import Any

from prometheus_client import start_http_server
from redis.asyncio import Redis

from orbyt.shared.catalog import Catalog, catalog_for
from orbyt.shared.redis import roles
from orbyt.shared.redis.fast import PipelinedConnection
from orbyt.shared.settings import Settings
from orbyt.worker.deployments import Deployments
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
    state: Redis | None = None  # the state role's client, if not `redis`

    @classmethod
    def create(cls, settings: Settings, redis: Redis) -> WorkerContext:
        """`redis` is the queue role's client (arq's pool); route health goes to the state
        role (a client of its own unless both roles are one Redis)."""
        state = redis if roles.shared(settings) else roles.state_client(settings)
        return cls(
            settings=settings,
            catalog=catalog_for(settings),
            client=Upstream(settings),
            health=Health(state, settings.breaker_failures, settings.breaker_cooldown),
            redis=redis,
            publisher=PipelinedConnection(
                roles.queue_url(settings),
                coalesce=settings.publish_coalesce_ms / 1000,
                liveness=roles.liveness(settings),
            ),
            worker_id=f"{socket.gethostname()}:{os.getpid()}",
            state=state,
        )

    @cached_property
    def deployments(self) -> Deployments:
        """Each provider's deployments (built once, on first use)."""
        return Deployments(self.settings)

    @cached_property
    def unseal_keys(self) -> list[str]:
        """The secrets a BYOK side-car may be sealed with (current first, then old ones)."""
        return self.settings.secrets()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        await self.client.aclose()
        await self.publisher.close()
        if self.state is not None and self.state is not self.redis:
            await self.state.aclose()


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
