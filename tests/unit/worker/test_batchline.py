"""Batch line outcomes: which failures slow the batch down instead of failing the line,
and the sink that records instead of publishing."""

from __future__ import annotations

import json

from orbyt.shared.errors import Disposition, InvalidRequest, RateLimited, UpstreamError
from orbyt.worker.batchline import NO_PUB, LineReply, _defer_for, output_line, unrun_line


def _upstream(
    status: int, disposition: Disposition, retry_after: float | None = None
) -> UpstreamError:
    return UpstreamError("x", status=status, disposition=disposition, retry_after=retry_after)


def test_rate_limits_are_deferred_by_their_retry_after() -> None:
    assert _defer_for(_upstream(429, Disposition.RETRY, 3.0)) == 3.0
    assert _defer_for(_upstream(429, Disposition.RETRY)) == 0.5
    assert _defer_for(_upstream(429, Disposition.RETRY, 999)) == 60.0
    assert _defer_for(RateLimited("pool")) == 0.5


def test_other_failures_are_final() -> None:
    assert _defer_for(_upstream(429, Disposition.QUOTA)) is None  # quota is not a rate limit
    assert _defer_for(_upstream(503, Disposition.RETRY)) is None
    assert _defer_for(InvalidRequest("bad")) is None


async def test_line_reply_records_the_error() -> None:
    reply = LineReply(NO_PUB, "chatcmpl-1", 1)
    err = InvalidRequest("bad")
    await reply.fail(err)
    assert reply.error is err and reply.answer is None


def test_line_shapes() -> None:
    out = json.loads(output_line("c1", "rid", 200, {"ok": 1}, {"attempts": 1}))
    assert out["custom_id"] == "c1" and out["error"] is None and out["id"].startswith("batch_req_")
    assert out["response"]["status_code"] == 200 and out["response"]["request_id"] == "rid"
    unrun = json.loads(unrun_line("c2", "cancel"))
    assert unrun["response"] is None and unrun["error"]["code"] == "batch_cancelled"
