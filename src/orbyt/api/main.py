"""The API process: a thin FastAPI edge that validates, enqueues and relays."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from orbyt.api import errors
from orbyt.api import metrics as metrics_route
from orbyt.api.auth import Authenticator
from orbyt.api.fastpath import ChatFastPath
from orbyt.api.middleware import SecurityHeaders
from orbyt.api.replies import ReplyHub
from orbyt.api.routes import admin, batches, chat, files, health, models
from orbyt.api.state import AppState
from orbyt.api.usage import UsageBuffer
from orbyt.shared import metrics
from orbyt.shared.catalog import load_catalog
from orbyt.shared.resp import PipelinedConnection
from orbyt.shared.settings import Settings, get_settings

log = logging.getLogger("orbyt.api")


async def _flush_usage(usage: UsageBuffer, interval: float = 1.0) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await usage.flush()
        except Exception as exc:  # Redis away: kept in memory, retried next time
            log.warning("usage flush failed: %s", type(exc).__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url, max_connections=512)
        hub = ReplyHub(settings.redis_url, settings.reply_queue_frames)
        catalog = load_catalog(settings.catalog_path)
        usage = UsageBuffer(redis, catalog)
        fast = PipelinedConnection(settings.redis_url)
        app.state.orbyt = AppState(
            settings=settings,
            catalog=catalog,
            redis=redis,
            hub=hub,
            auth=Authenticator(settings, redis),
            usage=usage,
            fast=fast,
        )
        flusher = asyncio.create_task(_flush_usage(usage, settings.usage_flush_interval))
        lag = asyncio.create_task(metrics.watch_loop_lag())
        try:
            yield
        finally:
            flusher.cancel()
            lag.cancel()
            with contextlib.suppress(Exception):
                await usage.flush()
            await hub.close()
            await fast.close()
            await redis.aclose()

    app = FastAPI(title="Orbyt", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    errors.install(app)
    app.add_middleware(SecurityHeaders)
    app.include_router(chat.router)
    app.include_router(models.router)
    app.include_router(files.router)
    app.include_router(batches.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(metrics_route.router)
    return app


def create_asgi(settings: Settings | None = None) -> ChatFastPath:
    """What `orbyt api` serves: the FastAPI app behind the chat fast path."""
    return ChatFastPath(create_app(settings))
