"""The API process: a thin FastAPI edge that validates, enqueues and relays."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from redis.asyncio import Redis

from orbyt.api import errors
from orbyt.api import metrics as metrics_route
from orbyt.api.auth import Authenticator
from orbyt.api.fastpath import ChatFastPath
from orbyt.api.middleware import EDGE, RequireKey
from orbyt.api.pubsub_hub import PubSubHub
from orbyt.api.routes import (
    admin,
    batches,
    chat,
    embeddings,
    files,
    health,
    models,
    responses,
)
from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.catalog import catalog_for
from orbyt.shared.resp import PipelinedConnection
from orbyt.shared.settings import Settings, get_settings
from orbyt.shared.usage import UsageBuffer

log = logging.getLogger("orbyt.api")
PROTECTED_PATHS = frozenset({"/metrics", "/openapi.json"})  # with ORBYT_METRICS_KEY set


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
        hub = PubSubHub(settings.redis_url, settings.reply_queue_frames)
        catalog = catalog_for(settings)
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
    if settings.metrics_key is not None:
        key = settings.metrics_key.get_secret_value()
        app.add_middleware(RequireKey, key=key, paths=PROTECTED_PATHS)
    for middleware in reversed(EDGE):
        app.add_middleware(middleware)
    app.include_router(chat.router)
    app.include_router(embeddings.router)
    app.include_router(responses.router)
    app.include_router(models.router)
    app.include_router(files.router)
    app.include_router(batches.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(metrics_route.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the chat and embeddings routes, plain ASGI endpoints."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema["paths"] = {
            chat.PATH: {"post": chat.openapi_operation()},
            embeddings.PATH: {"post": embeddings.openapi_operation()},
            **schema["paths"],
        }
        app.openapi_schema = schema
    return app.openapi_schema


def create_asgi(settings: Settings | None = None) -> ChatFastPath:
    """What `orbyt api` serves: the FastAPI app behind the chat fast path."""
    return ChatFastPath(create_app(settings))
