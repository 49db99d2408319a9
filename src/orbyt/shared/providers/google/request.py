"""OpenAI chat body -> Gemini `generateContent` request. Pure; the mapping table is in
`shared.providers.google`, the conversation in `google.contents`, the generation and tool
fields in `google.config`."""

from __future__ import annotations

import re

import orjson

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.base import Json, Target, UpstreamRequest
from orbyt.shared.providers.google.config import (
    generation_config,
    reject_unsupported,
    thinking_family,
    tool_config,
    tools,
)
from orbyt.shared.providers.google.contents import convert_messages

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)


def build_request(body: Json, target: Target) -> UpstreamRequest:
    """The HTTP request: the key in `x-goog-api-key` (never in the URL), SSE when streaming."""
    model = upstream_model(target.upstream_model)
    stream = body.get("stream") is True
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    base = (target.base_url or DEFAULT_BASE_URL).rstrip("/")
    headers = {"content-type": "application/json", "accept": "application/json"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key.reveal()
    try:
        payload = orjson.dumps(build_payload(body, model))
    except orjson.JSONEncodeError:
        raise InvalidRequest("The request holds a value JSON cannot carry.") from None
    return UpstreamRequest(
        method="POST",
        url=f"{base}/v1beta/models/{model}:{method}",
        headers=headers,
        body=payload,
        stream=stream,
    )


def upstream_model(model: str) -> str:
    name = model.removeprefix("models/")
    if not _MODEL.fullmatch(name):
        raise InvalidRequest("Invalid google model name.", param="model", code="model_not_found")
    return name


def build_payload(body: Json, model: str) -> Json:
    """The generateContent request body for a validated OpenAI chat body."""
    reject_unsupported(body)
    family = thinking_family(model)
    system, contents = convert_messages(body.get("messages"), needs_signature=family == "level")
    payload: Json = {"contents": contents}
    if system is not None:
        payload["systemInstruction"] = system
    config = generation_config(body, model)
    if config:
        payload["generationConfig"] = config
    declarations = tools(body)
    if declarations:
        payload["tools"] = declarations
    choice = tool_config(body.get("tool_choice"))
    if choice is not None:
        payload["toolConfig"] = choice
    return payload
