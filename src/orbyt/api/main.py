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
from fastapi.staticfiles import StaticFiles

from orbyt.api import edge
from orbyt.api.auth import Authenticator
from orbyt.api.console import pages as console
from orbyt.api.edge import EDGE, FastPath, RequireKey
from orbyt.api.ledger import flush_usage
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
from orbyt.shared import metrics, tracing
from orbyt.shared.catalog import catalog_for
from orbyt.shared.redis import roles
from orbyt.shared.redis.fast import PipelinedConnection
from orbyt.shared.redis.hub import PubSubHub
from orbyt.shared.settings import Settings, get_settings
from orbyt.shared.usage import UsageBuffer

log = logging.getLogger("orbyt.api")
# With ORBYT_METRICS_KEY set. /docs and /redoc are FastAPI's pages: they load Swagger UI /
# ReDoc from a CDN (no maintained package ships those assets), and read /openapi.json.
PROTECTED_PATHS = frozenset(
    {"/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
ERROR_STATUSES = {
    "400": "Invalid request (OpenAI error JSON)",
    "401": "Missing, malformed or unknown gateway key",
    "403": "The key may not do this (e.g. pool providers without permission)",
    "404": "Unknown model or object",
    "413": "Request body too large",
    "429": "Rate limited (the key's limits or every upstream's); see Retry-After",
    "500": "Gateway error",
    "502": "Upstream error",
    "503": "No worker, no route or Redis unavailable; see x-should-retry",
    "504": "Deadline or upstream timeout",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = roles.state_client(settings, max_connections=512)
        queue_redis = (
            redis if roles.shared(settings) else roles.queue_client(settings, max_connections=512)
        )
        live = roles.liveness(settings)
        hub = PubSubHub(
            roles.queue_url(settings),
            settings.reply_queue_frames,
            live,
            resume=settings.reply_resume_s,
            coalesce=settings.publish_coalesce_ms / 1000,
        )
        catalog = catalog_for(settings)
        usage = UsageBuffer(redis, catalog)
        fast = PipelinedConnection(roles.queue_url(settings), liveness=live)
        app.state.orbyt = AppState(
            settings=settings,
            catalog=catalog,
            redis=redis,
            queue_redis=queue_redis,
            hub=hub,
            auth=Authenticator(settings, redis),
            usage=usage,
            fast=fast,
        )
        traced = tracing.setup("orbyt-api")
        flusher = asyncio.create_task(flush_usage(usage, settings.usage_flush_interval))
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
            if queue_redis is not redis:
                await queue_redis.aclose()
            if traced:
                tracing.shutdown()

    app = FastAPI(title="Orbyt", version="0.1.0", lifespan=lifespan)
    edge.install(app)
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
    app.include_router(console.router)
    app.mount("/console/static", StaticFiles(directory=console.STATIC), name="console-static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the queued routes (plain ASGI endpoints: chat, embeddings,
    responses), a bearer security scheme and OpenAI's error responses on the /v1 routes."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema["paths"] = {
            chat.PATH: {"post": chat.openapi_operation()},
            embeddings.PATH: {"post": embeddings.openapi_operation()},
            **schema["paths"],
        }
        schema["paths"][responses.PATH] = {  # beside GET/DELETE /v1/responses/{id}
            "post": responses.openapi_operation(),
            **schema["paths"].get(responses.PATH, {}),
        }
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        components["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A gateway key (`orbyt keys create`, ORBYT_GATEWAY_KEYS).",
            }
        }
        for path, operations in schema["paths"].items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    _document_errors(operation)
        app.openapi_schema = schema
    return app.openapi_schema


def _document_errors(operation: dict[str, Any]) -> None:
    operation["security"] = [{"bearerAuth": []}]
    responses = operation.setdefault("responses", {})
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for status, description in ERROR_STATUSES.items():
        responses.setdefault(status, {"description": description, "content": error})


def create_asgi(settings: Settings | None = None) -> FastPath:
    """What `orbyt api` serves: the FastAPI app behind the fast path of the queued routes."""
    hot = (chat, embeddings, responses)  # the queued endpoints: served past FastAPI's layers
    return FastPath(create_app(settings), {route.PATH: route.ENDPOINT for route in hot})
