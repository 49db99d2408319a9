"""POST /v1/embeddings: authenticate, validate, build an `embeddings` job, answer with the
worker's list body. The same exchange, queue and worker engine as chat serve it (so
`extra` fallbacks, retries, strategies, BYOK, key pools, breakers, usage and the
`x-orbyt-*` headers all apply); the job is never a stream. Validation is
`shared.embeddings`; errors go through the one mapper, `edge.render_exception`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import Route

from orbyt.api.auth import Principal
from orbyt.api.endpoint import QueuedEndpoint, allowed_plan, answer, new_job, queued_operation
from orbyt.api.state import AppState
from orbyt.shared.contract import EMBEDDINGS, ChatJob
from orbyt.shared.embeddings import (
    EmbeddingsRequest,
    InputKind,
    check_embeddings_plan,
    embeddings_request_schema,
    parse_embeddings_request,
)
from orbyt.shared.routing import provider_adapters, resolve_plan
from orbyt.shared.wire import Extra

PATH = "/v1/embeddings"


def build_job(
    st: AppState,
    rid: str,
    body: dict[str, Any],
    req: EmbeddingsRequest,
    kind: InputKind,
    principal: Principal,
) -> ChatJob:
    settings = st.settings
    extra = req.extra
    plan = resolve_plan(req.model, extra, st.catalog, settings)
    check_embeddings_plan(plan, req, kind, st.catalog, provider_adapters(settings))
    plan = allowed_plan(plan, principal)
    body.pop("extra", None)  # Orbyt's own field, and it may hold a BYOK key
    job = new_job(st, rid, body, plan, extra, principal, stream=False)
    job["kind"] = EMBEDDINGS
    return job


async def parse_and_build(
    st: AppState, rid: str, raw: bytes, principal: Principal
) -> tuple[ChatJob, Extra | None]:
    body, req, kind = parse_embeddings_request(raw)
    return build_job(st, rid, body, req, kind, principal), req.extra


def openapi_operation() -> dict[str, Any]:
    return queued_operation(
        "Embeddings",
        "OpenAI's embeddings, routed with fallbacks (`extra`).",
        "embeddings_v1_embeddings_post",
        embeddings_request_schema(),
    )


ENDPOINT = QueuedEndpoint(PATH, parse_and_build, answer)
router = APIRouter()
router.routes.append(Route(PATH, ENDPOINT, methods=["POST"], include_in_schema=False))
