"""Process-wide state of one API replica, built in the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from orbyt.api.auth import Authenticator
from orbyt.shared.catalog import Catalog
from orbyt.shared.redis.fast import PipelinedConnection
from orbyt.shared.redis.hub import PubSubHub
from orbyt.shared.settings import Settings
from orbyt.shared.usage import UsageBuffer

log = logging.getLogger("orbyt.api")


@dataclass
class AppState:
    settings: Settings
    catalog: Catalog
    redis: Redis  # the state role: gateway keys, usage, limits
    queue_redis: Redis  # the queue role: jobs, cancels (the same client when one Redis)
    hub: PubSubHub
    auth: Authenticator
    usage: UsageBuffer
    fast: PipelinedConnection  # hot-path commands (enqueue), on the queue role
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Fire-and-forget work that must outlive the request; a failure is one WARNING
        line (Redis away is an expected event), never an unretrieved task exception."""
        task = asyncio.get_running_loop().create_task(
            coro, name=getattr(coro, "__qualname__", None)
        )
        self.background.add(task)
        task.add_done_callback(self._settle)

    def _settle(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("background %s failed: %s", task.get_name(), type(exc).__name__)
