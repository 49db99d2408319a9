"""The Files and Batches API through the official SDK: upload, create, poll, download,
cancel, list with pagination, ownership, validation."""

from __future__ import annotations

import openai
import pytest
import redis

from tests.gateway import Gateway
from tests.integration.batch.support import (
    MODEL,
    client,
    jsonl,
    line,
    results,
    submit,
    upload,
    wait,
)

pytestmark = pytest.mark.integration


def test_batch_runs_to_completion(gateway: Gateway) -> None:
    c = client(gateway.base_url)
    lines = [line(f"req-{i}", f"hello {i}") for i in range(20)]
    lines.append(line("bad-1", "FAIL please"))
    batch = submit(c, lines, metadata={"job": "nightly"})
    assert batch.status in ("validating", "in_progress")
    assert batch.metadata == {"job": "nightly"}
    done = wait(c, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (21, 20)
    assert done.request_counts.failed == 1
    assert done.completed_at and done.finalizing_at and done.in_progress_at and done.expires_at
    out, err = results(c, done)
    assert sorted(x["custom_id"] for x in out) == sorted(f"req-{i}" for i in range(20))
    assert [x["custom_id"] for x in err] == ["bad-1"]
    for x in out:
        assert x["id"].startswith("batch_req_") and x["error"] is None
        assert x["response"]["status_code"] == 200
        body = x["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == MODEL
        assert body["usage"]["total_tokens"] > 0
    assert err[0]["response"]["status_code"] == 400
    assert err[0]["response"]["body"]["error"]["message"]
    assert done.usage is not None and done.usage.input_tokens > 0
    info = c.files.retrieve(done.output_file_id or "")
    assert info.purpose == "batch_output" and info.bytes > 0


def test_files_api(gateway: Gateway) -> None:
    c = client(gateway.base_url)
    data = jsonl([line("a", "x")])
    created = c.files.create(file=("mine.jsonl", data), purpose="batch")
    assert (created.filename, created.bytes, created.purpose) == ("mine.jsonl", len(data), "batch")
    assert c.files.retrieve(created.id).id == created.id
    assert c.files.content(created.id).content == data
    assert created.id in [f.id for f in c.files.list(purpose="batch")]
    deleted = c.files.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        c.files.retrieve(created.id)
    with pytest.raises(openai.BadRequestError):
        c.files.create(file=("x.jsonl", data), purpose="fine-tune")


def test_list_batches_paginates(gateway: Gateway) -> None:
    c = client(gateway.base_url)
    ids = [submit(c, [line("only", "x")]).id for _ in range(5)]
    first = c.batches.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    seen = [b.id for b in c.batches.list(limit=2)]  # the SDK's auto-pagination
    assert seen[: len(ids)] == list(reversed(ids))
    for bid in ids:
        wait(c, bid)


def test_another_key_sees_nothing(gateway: Gateway) -> None:
    c = client(gateway.base_url)
    batch = submit(c, [line("x", "hi")])
    fid = batch.input_file_id
    r = redis.Redis.from_url(gateway.redis_url)
    other = _make_key(gateway)
    o = client(gateway.base_url, other)
    for call in (
        lambda: o.batches.retrieve(batch.id),
        lambda: o.batches.cancel(batch.id),
        lambda: o.files.retrieve(fid),
        lambda: o.files.content(fid),
        lambda: o.files.delete(fid),
        lambda: o.batches.create(
            input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h"
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert batch.id not in [b.id for b in o.batches.list()]
    assert fid not in [f.id for f in o.files.list()]
    wait(c, batch.id)
    r.close()


def _make_key(gateway: Gateway) -> str:
    import asyncio

    from redis.asyncio import Redis

    from orbyt.api.keystore import KeyStore

    async def make() -> str:
        r = Redis.from_url(gateway.redis_url)
        key, _ = await KeyStore(r).create("other")
        await r.aclose()
        return key

    return asyncio.run(make())


def test_cancel(gateway: Gateway) -> None:
    c = client(gateway.base_url)
    lines = [line(f"s-{i}", f"SLOW {i}") for i in range(200)]
    batch = submit(c, lines)
    wait(c, batch.id, until=("in_progress",))
    cancelling = c.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait(c, batch.id)
    assert done.status == "cancelled" and done.cancelled_at and done.cancelling_at
    out, err = results(c, done)
    ids = [x["custom_id"] for x in out + err]
    assert sorted(ids) == sorted(f"s-{i}" for i in range(200))  # exactly once each
    assert any(x["error"] and x["error"]["code"] == "batch_cancelled" for x in err)
    assert done.request_counts is not None
    assert done.request_counts.completed == len(out) < 200


@pytest.mark.parametrize(
    ("content", "code", "line_no"),
    [
        (b'{"custom_id": "a"\n', "invalid_json_line", 1),
        (jsonl([line("a", "x"), line("a", "y")]), "duplicate_custom_id", 2),
        (jsonl([{**line("a", "x"), "method": "GET"}]), "invalid_method", 1),
        (jsonl([{**line("a", "x"), "url": "/v1/embeddings"}]), "mismatched_endpoint", 1),
        (jsonl([line("a", "x", model="openai/not-a-model")]), "model_not_found", 1),
        (jsonl([{"method": "POST", "url": "/v1/chat/completions", "body": {}}]), None, 1),
    ],
)
def test_validation_fails_the_batch(
    gateway: Gateway, content: bytes, code: str | None, line_no: int
) -> None:
    c = client(gateway.base_url)
    batch = wait(c, submit(c, content).id)
    assert batch.status == "failed" and batch.failed_at
    assert batch.errors is not None and batch.errors.data
    first = batch.errors.data[0]
    assert first.line == line_no
    if code:
        assert first.code == code


def test_byok_in_a_line_is_a_400(gateway: Gateway) -> None:
    c = client(gateway.base_url)
    bad = line("a", "x", extra={"byok": "sk-secret-123456789012345678901234"})
    with pytest.raises(openai.BadRequestError) as info:
        submit(c, [bad])
    assert "byok" in str(info.value) and "sk-secret" not in str(info.value)


def test_bad_create_requests(gateway: Gateway) -> None:
    c = client(gateway.base_url)
    fid = upload(c, [line("a", "x")])
    with pytest.raises(openai.BadRequestError):
        c.batches.create(input_file_id=fid, endpoint="/v1/nope", completion_window="24h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        c.batches.create(input_file_id=fid, endpoint="/v1/chat/completions", completion_window="1y")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        c.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        c.batches.retrieve("batch_nope")
