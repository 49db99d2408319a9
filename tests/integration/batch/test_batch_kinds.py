"""Batches of `/v1/embeddings` and `/v1/responses` lines (issue 13) through the official SDK:
every line answered once with the body the interactive endpoint returns (parsed as the SDK's
`CreateEmbeddingResponse` / `Response`), usage per key, stored responses and
`previous_response_id`, line-numbered validation errors of each kind, a mixed file refused,
and `orbyt batch run` with an embeddings file. OpenAI (native Responses API) and Mistral (a
translated route) fakes serve the lines."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis
from openai.types import CreateEmbeddingResponse
from openai.types.responses import Response

from tests.fakes import FakeMistral, FakeOpenAI
from tests.gateway import Gateway, RedisServer
from tests.integration.batch.conftest import BATCH_ENV, assert_no_errors
from tests.integration.batch.support import client, line, read_lines, upload, wait

pytestmark = pytest.mark.integration

EMBED = "openai/text-embedding-3-small"
MISTRAL_EMBED = "mistral/mistral-embed"
MISTRAL_KEY = "Zq8Xw2Lm5Np7Rt4Vy1Bc3Df6Gh9Jk0Ms"
CHAT = {"openai": "openai/gpt-5-mini", "mistral": "mistral/mistral-large-latest"}


@pytest.fixture(scope="module")
def mistral() -> Iterator[FakeMistral]:
    with FakeMistral(keys=[MISTRAL_KEY]) as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(
    redis_server: RedisServer, mistral: FakeMistral, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with FakeOpenAI(keys=["sk-pool-openai-1"]) as oai:
        env = {
            "ORBYT_PROVIDERS__OPENAI__BASE_URL": oai.base_url,
            "ORBYT_PROVIDERS__OPENAI__KEYS": '["sk-pool-openai-1"]',
            "ORBYT_PROVIDERS__MISTRAL__BASE_URL": mistral.base_url,
            "ORBYT_PROVIDERS__MISTRAL__KEYS": f'["{MISTRAL_KEY}"]',
            "ORBYT_FILE_STORE": str(tmp_path_factory.mktemp("files")),
            **BATCH_ENV,
        }
        with Gateway(redis_server.new_db_url(), env, workers=1) as gateway:
            yield gateway
            assert_no_errors(gateway)


def embed_line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": EMBED, "input": f"text of {custom_id}", **body},
    }


def resp_line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": CHAT["openai"], "input": f"say {custom_id}", **body},
    }


def run(c: openai.OpenAI, lines: list[dict[str, Any]], endpoint: str) -> Any:
    fid = upload(c, lines)
    batch = c.batches.create(input_file_id=fid, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    return wait(c, batch.id)


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [x["custom_id"] for x in rows]
    assert len(ids) == len(set(ids)), ids  # every custom_id once
    return {x["custom_id"]: x for x in rows}


def batch_usage(gw: Gateway, model: str) -> dict[str, int]:
    """This database's usage counters of `model` (every key, today), once they are written."""
    r = redis.Redis.from_url(gw.redis_url)
    end = time.monotonic() + 10
    while True:
        out: dict[str, int] = {}
        for key in r.scan_iter("orbyt:usage:*"):
            for field, value in r.hgetall(key).items():
                name, _, counter = field.decode().rpartition("|")
                if name == model:
                    out[counter] = out.get(counter, 0) + int(value)
        if out.get("batch_requests") or time.monotonic() > end:
            return out
        time.sleep(0.2)


def test_embeddings_batch(gw: Gateway) -> None:
    c = client(gw.base_url)
    lines = [embed_line(f"e-{i}") for i in range(8)]
    lines.append(embed_line("e-list", input=["one", "two", "three"], dimensions=256))
    lines.append(embed_line("e-b64", encoding_format="base64"))
    lines.append(embed_line("e-mistral", model=MISTRAL_EMBED, input=["a", "b"]))
    lines.append(
        embed_line("e-fallback", extra={"fallback_models": ["openai/text-embedding-3-small"]})
    )
    done = run(c, lines, "/v1/embeddings")
    assert done.status == "completed", done.errors
    assert done.request_counts.completed == len(lines) and done.request_counts.failed == 0
    out = by_id(read_lines(c, done.output_file_id))
    assert set(out) == {x["custom_id"] for x in lines}
    for custom_id, row in out.items():
        assert row["response"]["status_code"] == 200 and row["error"] is None
        body = row["response"]["body"]
        if custom_id == "e-b64":  # the SDK decodes base64 itself, then validates floats
            vector = body["data"][0]["embedding"]
            assert isinstance(vector, str) and len(base64.b64decode(vector)) == 1536 * 4
            body["data"][0]["embedding"] = [0.0]
        parsed = CreateEmbeddingResponse.model_validate(body)
        assert parsed.object == "list" and parsed.usage.prompt_tokens > 0
        if custom_id == "e-list":
            assert [d.index for d in parsed.data] == [0, 1, 2]
            assert all(len(d.embedding) == 256 for d in parsed.data)
        elif custom_id == "e-b64":
            assert parsed.model == EMBED
        elif custom_id == "e-mistral":
            assert parsed.model == MISTRAL_EMBED and len(parsed.data[0].embedding) == 1024
        else:
            assert parsed.model == EMBED and len(parsed.data[0].embedding) == 1536
    assert row["response"]["orbyt"]["attempts"] == 1
    usage = batch_usage(gw, EMBED)
    assert usage["batch_requests"] >= len(lines) - 1 and usage["prompt_tokens"] > 0


def test_responses_batch(gw: Gateway, mistral: FakeMistral) -> None:
    c = client(gw.base_url)
    earlier = c.responses.create(model=CHAT["mistral"], input="remember 42")
    lines = [resp_line(f"r-{i}") for i in range(6)]
    lines.append(resp_line("r-mistral", model=CHAT["mistral"], instructions="Be brief."))
    lines.append(resp_line("r-chain", model=CHAT["mistral"], previous_response_id=earlier.id))
    lines.append(resp_line("r-nostore", store=False))
    lines.append(resp_line("r-unknown", previous_response_id="resp_nope"))
    done = run(c, lines, "/v1/responses")
    assert done.status == "completed", done.errors
    assert (done.request_counts.completed, done.request_counts.failed) == (len(lines) - 1, 1)
    out = by_id(read_lines(c, done.output_file_id))
    err = by_id(read_lines(c, done.error_file_id))
    assert set(out) | set(err) == {x["custom_id"] for x in lines} and not set(out) & set(err)
    assert err["r-unknown"]["response"]["status_code"] == 404
    assert err["r-unknown"]["response"]["body"]["error"]["code"] == "response_not_found"
    for custom_id, row in out.items():
        assert row["response"]["status_code"] == 200
        response = Response.model_validate(row["response"]["body"])
        assert response.status == "completed" and response.output_text
        assert response.usage is not None and response.usage.input_tokens > 0
        assert response.model == (
            CHAT["mistral"] if "mistral" in custom_id or "chain" in custom_id else CHAT["openai"]
        )
    chained = Response.model_validate(out["r-chain"]["response"]["body"])
    assert chained.previous_response_id == earlier.id
    sent = [r.json for r in mistral.requests if "say r-chain" in str(r.json)]
    assert len(sent) == 1 and "remember 42" in str(sent[0]["messages"])  # the stored chain
    # stored like an interactive `store: true` request, owned by the batch's key
    stored = Response.model_validate(out["r-mistral"]["response"]["body"])
    assert c.responses.retrieve(stored.id).id == stored.id
    follow = c.responses.create(
        model=CHAT["openai"], input="and then?", previous_response_id=stored.id
    )
    assert follow.previous_response_id == stored.id
    unstored = Response.model_validate(out["r-nostore"]["response"]["body"])
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(unstored.id)
    usage = batch_usage(gw, CHAT["openai"])
    assert usage["batch_requests"] >= 6 and usage["prompt_tokens"] > 0


@pytest.mark.parametrize(
    ("endpoint", "bad", "code", "param"),
    [
        ("/v1/embeddings", embed_line("x", input=""), "invalid_value", "body.input"),
        (
            "/v1/embeddings",
            embed_line("x", model=CHAT["openai"]),
            "model_not_supported",
            "body.model",
        ),
        ("/v1/embeddings", embed_line("x", messages=[]), "unknown_parameter", "body.messages"),
        (
            "/v1/embeddings",
            embed_line("x", extra={"fallback_models": [MISTRAL_EMBED]}),
            "invalid_value",
            "body.extra.fallback_models",
        ),
        ("/v1/embeddings", embed_line("x", model="openai/nope"), "model_not_found", "body.model"),
        ("/v1/responses", resp_line("x", stream=True), "invalid_value", "body.stream"),
        ("/v1/responses", resp_line("x", input=[{"type": "bogus"}]), None, None),
        (
            "/v1/responses",
            resp_line("x", model=CHAT["mistral"], tools=[{"type": "web_search"}]),
            None,
            "body.tools[0].type",
        ),
        ("/v1/responses", resp_line("x", temperature=5), None, "body.temperature"),
        ("/v1/responses", resp_line("x", messages=[]), "unknown_parameter", "body.messages"),
        ("/v1/embeddings", line("x", "a chat line"), "mismatched_endpoint", "url"),
        ("/v1/responses", embed_line("x"), "mismatched_endpoint", "url"),
    ],
)
def test_bad_line_fails_the_batch(
    gw: Gateway, endpoint: str, bad: dict[str, Any], code: str | None, param: str | None
) -> None:
    c = client(gw.base_url)
    good = embed_line("ok") if endpoint == "/v1/embeddings" else resp_line("ok")
    batch = run(c, [good, bad], endpoint)
    assert batch.status == "failed", batch
    assert batch.errors is not None and len(batch.errors.data) == 1
    first = batch.errors.data[0]
    assert first.line == 2, first
    if code:
        assert first.code == code, first
    if param:
        assert first.param == param, first


@pytest.mark.parametrize("kind", [embed_line, resp_line])
def test_byok_in_a_line_is_a_400(gw: Gateway, kind: Any) -> None:
    c = client(gw.base_url)
    bad = kind("a", extra={"byok": "sk-secret-123456789012345678901234"})
    fid = upload(c, [bad])
    with pytest.raises(openai.BadRequestError) as info:
        c.batches.create(input_file_id=fid, endpoint=bad["url"], completion_window="24h")
    assert "byok" in str(info.value) and "sk-secret" not in str(info.value)


def test_cli_runs_an_embeddings_file(gw: Gateway, tmp_path: Path) -> None:
    from tests.integration.batch.test_batch_cli import orbyt, read_jsonl, write_input

    lines = [embed_line(f"c-{i}") for i in range(5)]
    write_input(tmp_path / "in.jsonl", lines)
    proc = orbyt(tmp_path, "batch", "run", "in.jsonl", "-o", "out.jsonl", "-q", gw=gw)
    assert proc.returncode == 0, proc.stderr
    out = read_jsonl(tmp_path / "out.jsonl")
    assert sorted(x["custom_id"] for x in out) == [f"c-{i}" for i in range(5)]
    for row in out:
        CreateEmbeddingResponse.model_validate(row["response"]["body"])
    mixed = write_input(tmp_path / "mixed.jsonl", [embed_line("m-1"), resp_line("m-2")])
    proc = orbyt(tmp_path, "batch", "run", mixed.name, "-o", "m.jsonl", gw=gw)
    assert proc.returncode != 0 and "mixes endpoints" in proc.stderr
