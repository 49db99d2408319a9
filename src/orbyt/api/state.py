"""Process-wide state of one API replica, built in the app's lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from orbyt.api.auth import Authenticator
from orbyt.api.replies import ReplyHub
from orbyt.api.usage import UsageBuffer
from orbyt.shared.catalog import Catalog
from orbyt.shared.resp import PipelinedConnection
from orbyt.shared.settings import Settings


@dataclass
class AppState:
    settings: Settings
    catalog: Catalog
    redis: Redis
    hub: ReplyHub
    auth: Authenticator
    usage: UsageBuffer
    fast: PipelinedConnection  # hot-path commands (enqueue)
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Any) -> None:
        """Fire-and-forget work that must survive the request's cancellation."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
