"""How one API request ended, written down exactly once: metrics, the access-log line, the
usage record, and the release of the caller's concurrency slot."""

from __future__ import annotations

import logging
import time
from typing import Any

from orbyt.api.auth import Principal
from orbyt.api.metrics import observe_request
from orbyt.api.state import AppState
from orbyt.shared.contract import Candidate
from orbyt.shared.logs import safe_name
from orbyt.shared.usage import UsageEvent

log = logging.getLogger("orbyt.api")


class Ledger:
    def __init__(
        self, st: AppState, principal: Principal, rid: str, primary: Candidate, started: float
    ) -> None:
        self._st = st
        self._principal = principal
        self._rid = rid
        self._primary = primary  # named in the record until a worker says who answered
        self._started = started  # time.monotonic() when the request was accepted
        self.closed = False

    async def close(self, status: int, meta: dict[str, Any] | None) -> None:
        """Record the outcome (only the first call counts); never raises."""
        if self.closed:
            return
        self.closed = True
        event = self._event(status, meta or {})
        observe_request(self._st.catalog, event)
        log.info(
            "request finished",
            extra={
                "event": "request",
                "model": event.model,
                "provider": event.provider,
                "status": status,
                "attempts": event.attempts,
                "key_source": event.key_source,
                "key_id": event.key_id,
                "latency_ms": round(event.latency_ms, 1),
            },
        )
        self._st.usage.add(event)
        try:
            await self._st.auth.release(self._principal, self._rid)
        except Exception as exc:  # accounting must never fail a request
            log.warning("concurrency release failed: %s", type(exc).__name__)

    def _event(self, status: int, meta: dict[str, Any]) -> UsageEvent:
        primary = self._primary
        return UsageEvent(
            self._principal.key_id,
            safe_name(str(meta.get("model") or primary["model"])),
            str(meta.get("provider") or primary["provider"]),
            str(meta.get("key_source") or primary["key_source"]),
            status,
            int(meta.get("attempts") or 0),
            (time.monotonic() - self._started) * 1000,
            meta.get("usage"),
        )
