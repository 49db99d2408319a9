"""Batch input validation (pure) and the line state machine's exactly-once rules (fakeredis
with Lua)."""

from __future__ import annotations

import json

import fakeredis
import pytest

from orbyt.shared.batchlines import ByokInBatch, validate_input
from orbyt.shared.batchstate import BatchState
from orbyt.shared.catalog import load_catalog
from orbyt.shared.settings import Settings

CHAT = "/v1/chat/completions"


def _line(cid: str, **body: object) -> bytes:
    b = {"model": "openai/gpt-5-mini", "messages": [{"role": "user", "content": "x"}], **body}
    return json.dumps({"custom_id": cid, "method": "POST", "url": CHAT, "body": b}).encode()


def _check(data: bytes, **settings: object) -> list[dict[str, object]]:
    return validate_input(data, CHAT, load_catalog(None), Settings(**settings)).errors  # type: ignore[arg-type]


def test_valid_input_keeps_custom_id_and_body() -> None:
    out = validate_input(_line("a") + b"\n\n" + _line("b"), CHAT, load_catalog(None), Settings())
    assert not out.errors and out.model == "openai/gpt-5-mini"
    assert [json.loads(x)["custom_id"] for x in out.lines] == ["a", "b"]


def test_errors_are_line_numbered() -> None:
    errors = _check(_line("a") + b"\nnot json\n" + _line("a") + b"\n" + _line("c", temperature=9))
    assert [(e["line"], e["code"]) for e in errors] == [
        (2, "invalid_json_line"),
        (3, "duplicate_custom_id"),
        (4, "invalid_value"),
    ]
    assert errors[2]["param"] == "body.temperature"


def test_limits() -> None:
    assert (
        _check(_line("a") + b"\n" + _line("b"), batch_max_lines=1)[0]["code"] == "too_many_requests"
    )
    assert _check(_line("a"), batch_max_file_bytes=10)[0]["code"] == "file_too_large"
    assert _check(b"\n")[0]["code"] == "empty_file"


def test_byok_refuses_the_batch() -> None:
    with pytest.raises(ByokInBatch):
        _check(_line("a", extra={"byok": "sk-x"}))


async def test_a_line_is_recorded_once_and_the_batch_completes() -> None:
    redis = fakeredis.FakeAsyncRedis()
    state = BatchState(redis, "orbyt:batch")
    record = {
        "id": "batch_1", "owner": "k", "created_ms": "1", "total": "2", "next": "0",
        "completed": "0", "failed": "0", "inflight": "0", "end": "", "status": "in_progress",
        "expires_at": str(10**10),
    }  # fmt: skip
    await state.create(record, runnable=True)
    claimed = await state.claim(10, 10, 30, "orbyt:chat")
    assert claimed.lines == [("batch_1", 0), ("batch_1", 1)]
    assert await state.record("batch_1", 0, True, b"{}", (1, 2), None)
    assert not await state.record("batch_1", 0, False, b"{}", (1, 2), None)  # once
    await state.defer("batch_1", 1, 0)
    again = await state.claim(10, 10, 30, "orbyt:chat")
    assert again.lines == [("batch_1", 1)]
    assert await state.record("batch_1", 1, False, b"{}", (0, 0), ("u", 60, {"m|requests": 1}))
    done = await state.get("batch_1")
    assert done is not None
    assert (done["status"], done["completed"], done["failed"], done["inflight"]) == (
        "finalizing", "1", "1", "0",
    )  # fmt: skip
    assert (await state.claim(10, 10, 30, "orbyt:chat")).finals == ["batch_1"]
    assert await redis.hget("u", "m|requests") == b"1"  # type: ignore[misc]


async def test_interactive_jobs_go_first() -> None:
    redis = fakeredis.FakeAsyncRedis()
    state = BatchState(redis, "orbyt:batch")
    record = {
        "id": "b", "owner": "k", "created_ms": "1", "total": "1", "next": "0", "end": "",
        "completed": "0", "failed": "0", "inflight": "0", "status": "in_progress",
        "expires_at": str(10**10),
    }  # fmt: skip
    await state.create(record, runnable=True)
    await redis.zadd("orbyt:chat", {"job": 0})
    assert (await state.claim(10, 10, 30, "orbyt:chat")).lines == []
    await redis.zrem("orbyt:chat", "job")
    assert (await state.claim(10, 10, 30, "orbyt:chat")).lines == [("b", 0)]


def test_objects_parse_as_the_sdk_types() -> None:
    from openai.types import Batch, FileObject

    from orbyt.shared import batchfiles
    from orbyt.shared.batchstate import render

    record = {
        "id": "batch_x", "owner": "k", "endpoint": CHAT, "input_file_id": "file-1",
        "completion_window": "24h", "created_at": "100", "status": "failed", "total": "3",
        "completed": "1", "failed": "2", "metadata": '{"a": "b"}', "failed_at": "101",
        "errors": json.dumps({"object": "list", "data": [
            {"code": "invalid_json_line", "message": "m", "param": None, "line": 2}
        ]}),
    }  # fmt: skip
    batch = Batch.model_validate(render(record))
    assert batch.request_counts is not None and batch.request_counts.failed == 2
    assert batch.errors is not None and batch.errors.data is not None
    assert batch.errors.data[0].line == 2 and batch.failed_at == 101
    assert batch.metadata == {"a": "b"} and batch.cancelled_at is None
    f = {"id": "file-1", "bytes": "5", "created_at": "1", "filename": "a.jsonl", "purpose": "batch"}
    assert FileObject.model_validate(batchfiles.render(f)).status == "processed"
