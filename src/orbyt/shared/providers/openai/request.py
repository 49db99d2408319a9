"""OpenAI chat body -> the upstream request, for OpenAI and the dialects that extend it.

`openai_payload` is OpenAI's own mapping (see `shared.providers.openai`); `json_post`
builds the Bearer JSON POST every OpenAI-shaped upstream takes; `reject`, `message_list`
and `reject_fields` serve dialects that validate more strictly than OpenAI (Mistral,
DeepSeek) and refuse fields with a 400 naming them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.base import Json, Target, UpstreamRequest
from orbyt.shared.secret import Secret

# Orbyt's own fields never go upstream.
GATEWAY_FIELDS = frozenset({"extra"})


def openai_payload(body: Json, target: Target) -> Json:
    """The body as is (minus Orbyt's fields and nulls) for the upstream model; streams always
    ask for usage."""
    payload = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS and v is not None}
    payload["model"] = target.upstream_model
    if payload.get("stream"):
        options = dict(payload.get("stream_options") or {})
        options["include_usage"] = True
        payload["stream_options"] = options
    else:
        payload.pop("stream_options", None)
    return payload


def json_post(url: str, payload: Json, api_key: Secret | None) -> UpstreamRequest:
    """A Bearer-authenticated JSON POST, as OpenAI-shaped APIs take it."""
    try:
        raw = orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError
        raise InvalidRequest("Request body cannot be encoded as JSON.") from None
    headers = {"content-type": "application/json", "accept": "application/json"}
    if api_key:
        headers["authorization"] = "Bearer " + api_key.reveal()
    return UpstreamRequest(
        method="POST", url=url, headers=headers, body=raw, stream=bool(payload.get("stream"))
    )


def reject(provider: str, param: str, message: str) -> InvalidRequest:
    """A request field this provider cannot take: a 400 naming the field."""
    return InvalidRequest(
        f"{message} (provider {provider}).", param=param, code="unsupported_parameter"
    )


def message_list(provider: str, messages: Any) -> list[Any]:
    if not isinstance(messages, list) or not messages:
        raise reject(provider, "messages", "'messages' must be a non-empty list")
    return messages


def reject_fields(provider: str, label: str, payload: Json, names: Iterable[str]) -> None:
    """Fields with no equivalent upstream, and output modalities other than text."""
    for name in names:
        if name in payload:
            raise reject(provider, name, f"'{name}' is not supported by {label}")
    modalities = payload.pop("modalities", None)
    if modalities is not None and modalities != ["text"]:
        raise reject(provider, "modalities", f"{label} only produces text")
