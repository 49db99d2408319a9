"""Gateway keys, per-key limits, the admin API, usage records and the admin CLI (DESIGN §9).

Two API processes share one Redis: a revocation, an RPM budget and a concurrency budget
made on one are in force on the other at the next request.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest
import redis

from orbyt.api.auth import hash_key
from orbyt.shared.catalog import default_catalog
from tests.fakes import Error, FakeOpenAI, Reply
from tests.gateway import GATEWAY_KEY, ROOT, Gateway, RedisServer

pytestmark = pytest.mark.integration

ADMIN_KEY = "orbyt-admin-" + "Qm3xT8vR2pL9sW4k" * 2
MSG = [{"role": "user", "content": "Say hi"}]
MODEL = "openai/gpt-5-mini"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as f:
        yield f


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer, fake: FakeOpenAI) -> Iterator[Gateway]:
    env = {
        "ORBYT_ADMIN_KEY": ADMIN_KEY,
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-pool-openai-gk",
    }
    with Gateway(redis_server.new_db_url(), env, workers=1, apis=2) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI) -> None:
    fake.reset()
    fake.default = Reply()


# ------------------------------------------------------------------------------ helpers
def sdk(gw: Gateway, key: str, api: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url(api) + "/v1", api_key=key, max_retries=0, timeout=20)


def chat(gw: Gateway, key: str | None, api: int = 0, **body: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.post(
        gw.url(api) + "/v1/chat/completions",
        headers=headers,
        timeout=20,
        json={"model": MODEL, "messages": MSG, **body},
    )


def admin(
    gw: Gateway,
    method: str,
    path: str,
    api: int = 0,
    key: str | None = ADMIN_KEY,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    sent = {"authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.request(
        method, gw.url(api) + path, headers={**sent, **(headers or {})}, timeout=10, **kwargs
    )


def create_key(gw: Gateway, name: str, **limits: Any) -> dict[str, Any]:
    r = admin(gw, "POST", "/admin/keys", json={"name": name, **limits})
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_openai_error(
    r: httpx.Response, status: int, type_: str | None = None, code: str | None = None
) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    err = body["error"]
    assert isinstance(err["message"], str) and err["message"]
    if type_ is not None:
        assert err["type"] == type_
    if code is not None:
        assert err["code"] == code
    return dict(err)


def cli(gw: Gateway, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORBYT_REDIS_URL": gw.redis_url, "PYTHONPATH": str(ROOT)}
    env.pop("ORBYT_ADMIN_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "orbyt", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=30,
        check=check,
    )


def away_from_minute_boundary(margin: float = 4.0) -> None:
    """RPM windows are calendar minutes: start a budget test well inside one."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.2)


def usage_today(gw: Gateway, key_id: str) -> dict[str, Any]:
    r = admin(gw, "GET", "/admin/usage", params={"key_id": key_id}, api=1)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_for(predicate: Any, timeout: float = 5.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


# ---------------------------------------------------------------------- authentication
@pytest.mark.parametrize(
    "authorization",
    [
        None,  # missing
        "",
        "Bearer",
        "Basic c2stb3ItdjE6eA==",
        "Token " + GATEWAY_KEY,
        GATEWAY_KEY,  # no scheme
        "Bearer sk-or-v1-" + "0" * 64,  # well-formed, unknown
        "Bearer sk-or-v1-short",
        "Bearer sk-proj-not-a-gateway-key",
        "Bearer " + GATEWAY_KEY + "x",
        "Bearer " + GATEWAY_KEY[:-1],
    ],
)
def test_bad_credentials_get_an_openai_401(
    gw: Gateway, fake: FakeOpenAI, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    for method, path in (
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/" + MODEL),
    ):
        r = httpx.request(
            method,
            gw.url() + path,
            headers=headers,
            timeout=10,
            json={"model": MODEL, "messages": MSG} if method == "POST" else None,
        )
        err = assert_openai_error(r, 401, "authentication_error", "invalid_api_key")
        assert GATEWAY_KEY not in r.text
        if authorization and len(authorization) > 12:
            assert authorization.split()[-1] not in err["message"]
    assert fake.requests == []


def test_the_sdk_raises_authentication_error(gw: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        sdk(gw, "sk-or-v1-" + "1" * 64).chat.completions.create(model=MODEL, messages=MSG)  # type: ignore[arg-type]
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"


def test_revocation_is_seen_by_the_other_api_process_at_once(gw: Gateway, fake: FakeOpenAI) -> None:
    created = create_key(gw, "to-revoke")
    key = created["key"]
    assert re.fullmatch(r"sk-or-v1-[0-9a-f]{64}", key)
    assert chat(gw, key, api=1).status_code == 200
    assert admin(gw, "POST", f"/admin/keys/{created['id']}/revoke").json() == {
        "id": created["id"],
        "revoked": True,
    }
    for api in (1, 0):  # no cache anywhere: the very next request is refused
        err = assert_openai_error(chat(gw, key, api=api), 401, "authentication_error")
        assert "revoked" in err["message"]
        r = httpx.get(gw.url(api) + "/v1/models", headers={"authorization": f"Bearer {key}"})
        assert_openai_error(r, 401)
    listed = {k["id"]: k for k in admin(gw, "GET", "/admin/keys", api=1).json()["data"]}
    assert listed[created["id"]]["revoked"] is True
    assert len(fake.requests) == 1


# --------------------------------------------------------------------------------- limits
def test_rpm_limit_holds_across_api_processes(gw: Gateway, fake: FakeOpenAI) -> None:
    key = create_key(gw, "rpm-3", rpm=3)["key"]
    away_from_minute_boundary()
    assert [chat(gw, key, api=i).status_code for i in (0, 1, 0)] == [200, 200, 200]
    for api in (1, 0):
        r = chat(gw, key, api=api)
        assert_openai_error(r, 429, "rate_limit_error", "rate_limit_exceeded")
        retry_after = int(r.headers["retry-after"])
        assert 1 <= retry_after <= 61
        assert r.headers["x-should-retry"] == "true"
    with pytest.raises(openai.RateLimitError):
        sdk(gw, key, api=1).chat.completions.create(model=MODEL, messages=MSG)  # type: ignore[arg-type]
    assert len(fake.requests) == 3
    # another key has its own budget
    assert chat(gw, create_key(gw, "rpm-other", rpm=3)["key"], api=1).status_code == 200


def test_concurrency_limit_holds_across_api_processes(gw: Gateway, fake: FakeOpenAI) -> None:
    key = create_key(gw, "two-at-a-time", concurrency=2)["key"]
    fake.script(Reply(text="slow one", ttft=1.5), Reply(text="slow two", ttft=1.5))
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(chat(gw, key, api=i).status_code))
        for i in (0, 1)
    ]
    for t in threads:
        t.start()
    assert fake.wait_for_requests(2, timeout=5)  # both in flight
    for api in (0, 1):
        r = chat(gw, key, api=api)
        assert_openai_error(r, 429, "rate_limit_error", "rate_limit_exceeded")
        assert int(r.headers["retry-after"]) >= 1
    for t in threads:
        t.join(10)
    assert results == [200, 200]
    # the slots were given back when the requests ended
    assert [chat(gw, key, api=i).status_code for i in (1, 0)] == [200, 200]
    # streams hold their slots while they run, and give them back at their end
    fake.script(Reply(tokens=20, per_token=0.05), Reply(tokens=20, per_token=0.05))
    with httpx.Client(timeout=20) as c, contextlib.ExitStack() as stack:
        responses = [
            stack.enter_context(
                c.stream(
                    "POST",
                    gw.url(i) + "/v1/chat/completions",
                    headers={"authorization": f"Bearer {key}"},
                    json={"model": MODEL, "messages": MSG, "stream": True},
                )
            )
            for i in (0, 1)
        ]
        chunks = [r.iter_raw() for r in responses]
        assert [r.status_code for r in responses] == [200, 200]
        assert all(next(it) for it in chunks)  # both streams are running
        assert_openai_error(chat(gw, key, api=1), 429, "rate_limit_error")
        for it in chunks:
            for _ in it:
                pass
    assert chat(gw, key).status_code == 200
    assert len(fake.requests) == 7


# ------------------------------------------------------------------------------ admin API
def test_admin_api_requires_the_admin_key(gw: Gateway) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/admin/keys", {}),
        ("POST", "/admin/keys", {"json": {"name": "x"}}),
        ("POST", "/admin/keys/key_0000/revoke", {}),
        ("GET", "/admin/usage", {"params": {"key_id": "key_0000"}}),
    ]
    for method, path, kwargs in calls:
        for key in (None, "wrong-admin-key", GATEWAY_KEY, ADMIN_KEY + "x", ADMIN_KEY[:-1]):
            r = admin(gw, method, path, key=key, **kwargs)
            assert_openai_error(r, 401, "authentication_error")
            assert ADMIN_KEY not in r.text
        r = admin(
            gw, method, path, key=ADMIN_KEY, headers={"authorization": "Basic eDp5"}, **kwargs
        )
        assert_openai_error(r, 401)
    # and a gateway key is not an admin key, nor the other way round
    assert_openai_error(chat(gw, ADMIN_KEY), 401)
    assert not any(k["name"] == "x" for k in admin(gw, "GET", "/admin/keys").json()["data"])


def test_admin_api_validates_like_the_rest(gw: Gateway) -> None:
    assert_openai_error(
        admin(gw, "POST", "/admin/keys", json={"name": ""}), 400, "invalid_request_error"
    )
    assert_openai_error(admin(gw, "POST", "/admin/keys", json={"name": "n", "rpm": -1}), 400)
    assert_openai_error(admin(gw, "POST", "/admin/keys", json={"name": "n", "oops": 1}), 400)
    for name in ("a\r\nb", "nul\x00", "\u202eevil", "tab\there"):  # log lines, tables, pages
        r = admin(gw, "POST", "/admin/keys", json={"name": name})
        assert_openai_error(r, 400)
        assert "control or format characters" in r.json()["error"]["message"]
    ok = admin(gw, "POST", "/admin/keys", json={"name": "équipe 数据 😀"})  # any printable text
    assert ok.status_code == 200 and ok.json()["name"] == "équipe 数据 😀"
    assert_openai_error(
        admin(
            gw,
            "POST",
            "/admin/keys",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        400,
    )
    assert_openai_error(admin(gw, "POST", "/admin/keys/key_nope/revoke"), 404)
    assert_openai_error(
        admin(gw, "GET", "/admin/usage", params={"key_id": "k", "day": "yesterday"}), 400
    )
    assert_openai_error(admin(gw, "GET", "/admin/usage"), 400)


def test_admin_api_is_off_without_an_admin_key(redis_server: RedisServer) -> None:
    with Gateway(redis_server.new_db_url(), {"ORBYT_ADMIN_KEY": ""}, workers=0) as bare:
        for key in (None, "anything", GATEWAY_KEY):
            r = admin(bare, "GET", "/admin/keys", key=key)
            err = assert_openai_error(r, 403, "permission_error")
            assert "ORBYT_ADMIN_KEY" in err["message"]
        assert_openai_error(admin(bare, "POST", "/admin/keys", key="x", json={"name": "n"}), 403)


def test_keys_are_stored_only_as_hashes(gw: Gateway) -> None:
    created = create_key(gw, "hashed", rpm=7, concurrency=3, pool=False)
    key = created["key"]
    assert {k: created[k] for k in ("name", "rpm", "concurrency", "pool", "revoked")} == {
        "name": "hashed",
        "rpm": 7,
        "concurrency": 3,
        "pool": False,
        "revoked": False,
    }
    r: Any = redis.Redis.from_url(gw.redis_url)
    try:
        assert r.hget(f"orbyt:gk:{hash_key(key)}", "id") == created["id"].encode()
        for name in r.scan_iter():
            assert key.encode() not in name and key[9:].encode() not in name
            if r.type(name) == b"string":
                assert key[9:].encode() not in (r.get(name) or b"")
            elif r.type(name) == b"hash":
                assert all(key[9:].encode() not in v for v in r.hgetall(name).values())
    finally:
        r.close()
    listed = admin(gw, "GET", "/admin/keys").json()["data"]
    assert all("key" not in k for k in listed) and key not in json.dumps(listed)


# ---------------------------------------------------------------------------------- usage
def test_usage_per_key_day_and_model(gw: Gateway, fake: FakeOpenAI) -> None:
    created = create_key(gw, "metered")
    key, key_id = created["key"], created["id"]
    fake.script(
        Reply(text="a", usage=(12, 4)),
        Reply(tokens=3, usage=(7, 30)),
        Reply(text="b", usage=(100, 50)),
        Error(400, kind="content_policy"),
    )
    assert chat(gw, key).status_code == 200
    with httpx.stream(
        "POST",
        gw.url(1) + "/v1/chat/completions",
        timeout=20,
        headers={"authorization": f"Bearer {key}"},
        json={
            "model": MODEL,
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ) as s:
        assert s.status_code == 200
        s.read()
    byok = chat(gw, key, extra={"byok": "sk-proj-callers-own-key-0123456789"})
    assert byok.status_code == 200 and byok.headers["x-orbyt-key-source"] == "byok"
    assert chat(gw, key, api=1).status_code == 400
    assert chat(gw, key, model="openai/gpt-4.1").status_code == 200  # a 5th, other model

    def complete() -> dict[str, Any] | None:
        models = usage_today(gw, key_id)["models"]
        done = models.get(MODEL, {}).get("requests") == 4 and "openai/gpt-4.1" in models
        return models if done else None

    models = wait_for(complete)
    assert models, usage_today(gw, key_id)
    info = default_catalog().get(MODEL)
    assert info is not None and info.input_price is not None and info.output_price is not None

    def cost(prompt: int, completion: int) -> int:
        assert info is not None and info.input_price is not None
        assert info.output_price is not None
        return round(prompt * info.input_price + completion * info.output_price)

    mini = models[MODEL]
    assert mini["requests"] == 4 and mini["errors"] == 1
    assert mini["prompt_tokens"] == 12 + 7 + 100
    assert mini["completion_tokens"] == 4 + 30 + 50
    assert mini["cost_micros"] == cost(12, 4) + cost(7, 30)  # gateway-billed: pool only
    assert mini["byok_requests"] == 1
    assert mini["provider_billed_cost_micros"] == cost(100, 50)
    assert mini["attempts"] == 4 and mini["latency_ms"] >= 0
    assert models["openai/gpt-4.1"]["requests"] == 1
    assert "byok_requests" not in models["openai/gpt-4.1"]
    # the same numbers through the CLI; another day has none; another key has its own
    out = json.loads(cli(gw, "usage", key_id).stdout)
    assert out["key_id"] == key_id and out["models"] == models
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    assert json.loads(cli(gw, "usage", key_id, "--day", yesterday).stdout)["models"] == {}
    assert usage_today(gw, create_key(gw, "idle")["id"])["models"] == {}
    day = usage_today(gw, key_id)["day"]
    assert day == datetime.now(UTC).strftime("%Y-%m-%d")
    r: Any = redis.Redis.from_url(gw.redis_url)
    try:
        ttl = r.ttl(f"orbyt:usage:{key_id}:{day}")
    finally:
        r.close()
    assert 0 < ttl <= 90 * 86400


# -------------------------------------------------------------------------------- the CLI
def test_cli_create_list_revoke(gw: Gateway, fake: FakeOpenAI) -> None:
    created = json.loads(
        cli(
            gw,
            "keys",
            "create",
            "--name",
            "from-cli",
            "--rpm",
            "50",
            "--concurrency",
            "4",
            "--no-pool",
        ).stdout
    )
    key = created["key"]
    assert re.fullmatch(r"sk-or-v1-[0-9a-f]{64}", key) and "not shown again" in created["note"]
    assert (created["name"], created["rpm"], created["concurrency"], created["pool"]) == (
        "from-cli",
        50,
        4,
        False,
    )
    listing = cli(gw, "keys", "list").stdout
    entry = next(k for k in json.loads(listing) if k["id"] == created["id"])
    assert entry == {k: v for k, v in created.items() if k not in ("key", "note")}
    assert key[9:] not in listing and hash_key(key) not in listing
    # the key works on both API processes; without pool permission only with BYOK
    assert_openai_error(chat(gw, key, api=1), 403, "permission_error", "pool_not_allowed")
    assert chat(gw, key, extra={"byok": "sk-proj-callers-own-key-0123456789"}).status_code == 200
    assert cli(gw, "keys", "revoke", created["id"]).stdout.strip().startswith("{")
    assert_openai_error(chat(gw, key, api=1, extra={"byok": "sk-proj-callers-own-key-012345"}), 401)
    listed = {k["id"]: k for k in json.loads(cli(gw, "keys", "list").stdout)}
    assert listed[created["id"]]["revoked"] is True
    missing = cli(gw, "keys", "revoke", "key_doesnotexist", check=False)
    assert missing.returncode == 1 and "no key" in missing.stdout
    assert len(fake.requests) == 1
