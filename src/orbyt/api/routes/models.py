"""GET /v1/models and /v1/models/{id}: the catalog in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from orbyt.api.state import AppState
from orbyt.shared.catalog import ModelInfo
from orbyt.shared.errors import NotFound
from orbyt.shared.routing import known_providers

router = APIRouter()


def model_entry(info: ModelInfo) -> dict[str, Any]:
    entry = _entry(info)
    if info.dimensions is not None:  # embedding models: the size of their vectors
        entry["dimensions"] = info.dimensions
    return entry


def _entry(info: ModelInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "object": "model",
        "created": 0,
        "owned_by": info.provider,
        "provider": info.provider,
        "context_window": info.context_window,
        "max_output_tokens": info.max_output_tokens,
        "capabilities": sorted(info.capabilities),
        "pricing": {"input_per_1m": info.input_price, "output_per_1m": info.output_price},
    }


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    st: AppState = request.app.state.orbyt
    await st.auth.authenticate(request.headers.get("authorization"), limits=False)
    providers = known_providers(st.settings)
    data = [model_entry(m) for m in st.catalog.models if m.provider in providers]
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    st: AppState = request.app.state.orbyt
    await st.auth.authenticate(request.headers.get("authorization"), limits=False)
    info = st.catalog.get(model_id)
    if info is None or info.provider not in known_providers(st.settings):
        raise NotFound(
            f"The model {model_id!r} does not exist.", param="model", code="model_not_found"
        )
    return model_entry(info)
