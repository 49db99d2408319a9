"""Batch input validation, as OpenAI does it, and the registry of line kinds.

A line is `{"custom_id", "method": "POST", "url": <the batch's endpoint>, "body"}`. Each
endpoint a batch may name is a `LineKind` in `LINE_KINDS`: its body validator here, its
runner in `worker.batchline.RUNNERS`. The validators are the interactive endpoints' own
(`/v1/chat/completions`, `/v1/embeddings`, `/v1/responses`; a Responses line may not
stream); every kind also needs a catalog model and a plan that resolves.

Problems of the input become line-numbered `errors` of a `failed` batch (OpenAI's shape:
`{code, message, param, line}`); only `extra.byok` refuses the create itself (HTTP 400): a
batch outlives any short-lived key side-car.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from orbyt.shared.catalog import Catalog
from orbyt.shared.contract import Candidate
from orbyt.shared.embeddings import check_embeddings_plan, parse_embeddings_request
from orbyt.shared.errors import InvalidRequest
from orbyt.shared.responses.prepare import chat_body
from orbyt.shared.responses.request import RESPONSES_FIELDS, ResponsesRequest
from orbyt.shared.routing import provider_adapters, resolve_plan
from orbyt.shared.settings import Settings
from orbyt.shared.wire import Extra, check_fields, parse_body, parse_chat_request

MAX_ERRORS = 100  # line errors reported for one batch


class ByokInBatch(InvalidRequest):
    """`extra.byok` in a batch line: refused when the batch is created."""


Validator = Callable[[dict[str, Any], Catalog, Settings], str]


def _routable(
    model: str, extra: Extra | None, catalog: Catalog, settings: Settings
) -> list[Candidate]:
    """What every kind checks alike: no BYOK, a catalog model, a plan that resolves."""
    if extra is not None and extra.byok is not None:
        raise ByokInBatch(
            "'extra.byok' is not accepted in batches: a batch outlives any short-lived key. "
            "Use a gateway key with pool access.",
            param="body.extra.byok",
            code="byok_not_allowed",
        )
    if catalog.get(model) is None:
        raise InvalidRequest(
            f"The model {model!r} is not in the catalog.", param="model", code="model_not_found"
        )
    return resolve_plan(model, extra, catalog, settings)  # fallbacks and strategy


def validate_chat(body: dict[str, Any], catalog: Catalog, settings: Settings) -> str:
    """Validate a chat completion body like an interactive request; returns its model."""
    _, req = parse_chat_request(orjson.dumps(body), settings.max_messages)
    _routable(req.model, req.extra, catalog, settings)
    return req.model


def validate_embeddings(body: dict[str, Any], catalog: Catalog, settings: Settings) -> str:
    """Validate an embeddings body as `POST /v1/embeddings` does; returns its model."""
    _, req, kind = parse_embeddings_request(orjson.dumps(body))
    plan = _routable(req.model, req.extra, catalog, settings)
    check_embeddings_plan(plan, req, kind, catalog, provider_adapters(settings))
    return req.model


def validate_responses(body: dict[str, Any], catalog: Catalog, settings: Settings) -> str:
    """Validate a Responses body as `POST /v1/responses` does (its translation included),
    without streaming; `previous_response_id` is looked up when the line runs."""
    clean, req = parse_body(orjson.dumps(body), ResponsesRequest)
    check_fields(clean, req.model, settings, RESPONSES_FIELDS)
    if req.stream:
        raise InvalidRequest(
            "'stream' is not supported in batches.", param="stream", code="invalid_value"
        )
    plan = _routable(req.model, req.extra, catalog, settings)
    clean.pop("extra", None)
    chat_body(clean, plan, settings, [])
    return req.model


@dataclass(frozen=True, slots=True)
class LineKind:
    endpoint: str
    validate: Validator


LINE_KINDS: dict[str, LineKind] = {
    kind.endpoint: kind
    for kind in (
        LineKind("/v1/chat/completions", validate_chat),
        LineKind("/v1/embeddings", validate_embeddings),
        LineKind("/v1/responses", validate_responses),
    )
}


@dataclass(slots=True)
class Validated:
    """A validated input: its lines as the worker reads them (`{"custom_id", "body"}` one per
    line), or the errors that fail the batch."""

    lines: list[bytes] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None

    def error(self, line: int | None, code: str, message: str, param: str | None = None) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


def validate_input(data: bytes, endpoint: str, catalog: Catalog, settings: Settings) -> Validated:
    """Validate a whole input file; raises ByokInBatch, never anything else."""
    out = Validated()
    kind = LINE_KINDS[endpoint]
    if len(data) > settings.batch_max_file_bytes:
        out.error(
            None, "file_too_large", f"The input file exceeds {settings.batch_max_file_bytes} bytes."
        )
        return out
    seen: set[str] = set()
    raw_lines = data.split(b"\n")
    for number, raw in enumerate(raw_lines, start=1):
        if raw.strip():
            _line(out, kind, number, raw, seen, catalog, settings)
    if len(out.lines) > settings.batch_max_lines:
        out.error(
            None, "too_many_requests", f"A batch holds at most {settings.batch_max_lines} requests."
        )
    if not out.lines and not out.errors:
        out.error(None, "empty_file", "The input file has no requests.")
    return out


def _line(
    out: Validated,
    kind: LineKind,
    number: int,
    raw: bytes,
    seen: set[str],
    catalog: Catalog,
    settings: Settings,
) -> None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return out.error(number, "invalid_json_line", "This line is not parseable as valid JSON.")
    if not isinstance(line, dict):
        return out.error(number, "invalid_json_line", "Each line must be a JSON object.")
    custom_id, body = line.get("custom_id"), line.get("body")
    if not isinstance(custom_id, str) or not custom_id:
        return out.error(number, "missing_required_parameter", "Missing 'custom_id'.", "custom_id")
    if custom_id in seen:
        return out.error(
            number,
            "duplicate_custom_id",
            "The custom_id for this request is a duplicate.",
            "custom_id",
        )
    seen.add(custom_id)
    if line.get("method") != "POST":
        return out.error(number, "invalid_method", "'method' must be 'POST'.", "method")
    if line.get("url") != kind.endpoint:
        return out.error(
            number,
            "mismatched_endpoint",
            f"'url' must be the batch's endpoint {kind.endpoint!r}.",
            "url",
        )
    if not isinstance(body, dict):
        return out.error(number, "missing_required_parameter", "Missing 'body' object.", "body")
    try:
        model = kind.validate(body, catalog, settings)
    except ByokInBatch:
        raise
    except InvalidRequest as exc:
        param = f"body.{exc.param}" if exc.param else "body"
        return out.error(number, exc.code or "invalid_request", exc.message, param)
    out.model = out.model or model
    out.lines.append(orjson.dumps({"custom_id": custom_id, "body": body}))
