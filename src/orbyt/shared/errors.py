"""One error tree for the whole gateway.

    OrbytError                      -> OpenAI error JSON with an HTTP status
      InvalidRequest (400)          -> bad input; `param` names the field
      AuthenticationFailed (401)
      PermissionDenied (403)
      NotFound (404)
      RequestTooLarge (413)
      RateLimited (429)             -> gateway-side limit, carries Retry-After
      ServiceUnavailable (503)      -> no worker, Redis down, ...
      GatewayTimeout (504)
      UpstreamError                 -> any failure of a provider call; knows its Disposition

Every class knows its HTTP status, OpenAI error `type`, and whether a caller may retry.
Foreign exceptions (httpx, provider bodies) are translated into `UpstreamError` in one
place per provider adapter (`map_error`) and in `worker.upstream` for transport errors.
"""

from __future__ import annotations

import enum
import re
from typing import Any


class Disposition(enum.Enum):
    """What the routing engine does with a failed attempt."""

    RETRY = "retry"  # same candidate again (backoff), then the next candidate
    FAILOVER = "failover"  # next candidate at once, no retry on this one
    CONTEXT = "context"  # fail over to a candidate with a larger context window
    AUTH = "auth"  # key rejected: next pool key, then next candidate
    QUOTA = "quota"  # key out of quota: final for that key, next pool key / candidate
    FINAL = "final"  # propagate to the caller as is


class OrbytError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def should_retry(self) -> bool:
        return self.status in (408, 409, 429) or self.status >= 500

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response_headers(self) -> dict[str, str]:
        headers = {"x-should-retry": "true" if self.should_retry else "false"}
        headers.update(self.headers)
        return headers


class InvalidRequest(OrbytError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(OrbytError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(OrbytError):
    status = 403
    type = "permission_error"


class NotFound(OrbytError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


_OWN_ID = re.compile(r"(file-|batch_|resp_)[0-9a-f]{8,64}(-[0-9]{1,9})?")


def shown_id(value: str) -> str:
    """An id as a 404 may repeat it: only when it has the shape of an id Orbyt issues, so a
    key pasted where an id goes (or any other caller text) is never echoed back."""
    return value if _OWN_ID.fullmatch(value) else "given"


class RequestTooLarge(OrbytError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(OrbytError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ServiceUnavailable(OrbytError):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class GatewayTimeout(OrbytError):
    status = 504
    type = "timeout_error"
    code = "timeout"


class UpstreamError(OrbytError):
    """A provider call failed. `disposition` tells the routing engine what to do next."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        disposition: Disposition,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        before_content: bool = True,
    ) -> None:
        super().__init__(
            message,
            status=status,
            type=type or _default_type(status),
            code=code,
            param=param,
            headers=headers,
        )
        self.disposition = disposition
        self.retry_after = retry_after
        self.before_content = before_content

    @property
    def should_retry(self) -> bool:
        """Truthful `x-should-retry`: transient statuses, except exhausted quotas."""
        return super().should_retry and self.disposition is not Disposition.QUOTA

    def response_headers(self) -> dict[str, str]:
        headers = super().response_headers()
        if self.retry_after is not None and self.should_retry:
            headers["retry-after"] = str(max(1, round(self.retry_after)))
            headers["retry-after-ms"] = str(int(self.retry_after * 1000))
        return headers


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
}


def _default_type(status: int) -> str:
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def classify_status(status: int) -> Disposition:
    """Default disposition of an upstream HTTP status (adapters refine it from the body)."""
    if status in RETRYABLE_STATUSES:
        return Disposition.RETRY
    if status in (401, 403):
        return Disposition.AUTH
    return Disposition.FINAL


def public_status(status: int) -> int:
    """Status the caller sees for an upstream status (Anthropic's 529 is not an HTTP status)."""
    return 503 if status == 529 else status


def upstream_error(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
    disposition: Disposition | None = None,
) -> UpstreamError:
    """Build an UpstreamError from a provider's HTTP status and its parsed reason."""
    if disposition is None:
        disposition = classify_status(status)
        if code == "context_length_exceeded":
            disposition = Disposition.CONTEXT
    return UpstreamError(
        message,
        status=public_status(status),
        disposition=disposition,
        type=type,
        code=code,
        param=param,
        retry_after=retry_after,
    )


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` / `retry-after` (seconds); None if absent or odd."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None
    return None
