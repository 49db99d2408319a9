"""Gateway keys at the unit level (DESIGN §9): bearer parsing, constant-time comparison of
hashes only, hash-only storage, usage counters. Limits and revocation across processes are
proven in tests/integration/test_gateway_keys.py."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr

from orbyt.api.auth import PREFIX, Authenticator, bearer, hash_key
from orbyt.api.keystore import KeyStore
from orbyt.api.routes.admin import admin
from orbyt.shared.catalog import default_catalog
from orbyt.shared.errors import AuthenticationFailed, PermissionDenied
from orbyt.shared.settings import Settings
from orbyt.shared.usage import UsageEvent, counters

STATIC = ["sk-or-v1-" + c * 64 for c in "abc"]


class Spy:
    """Observes `hmac.compare_digest` (and still calls the real one)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self._real = hmac.compare_digest

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return self._real(a, b)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spy]:
    observer = Spy()
    monkeypatch.setattr(hmac, "compare_digest", observer)
    yield observer


@pytest.fixture
def redis() -> fakeredis.aioredis.FakeRedis:
    return fakeredis.aioredis.FakeRedis()


def authenticator(redis: Any) -> Authenticator:
    settings = Settings(gateway_keys=[SecretStr(k) for k in STATIC], redis_url="redis://x")
    return Authenticator(settings, redis)


# --------------------------------------------------------------------------------- bearer
@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token x", "sk-or-v1-abc", "Bearer\tx"]
)
def test_bearer_rejects_what_is_not_a_bearer_token(header: str | None) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        bearer(header)
    assert info.value.status == 401 and info.value.code == "invalid_api_key"


def test_bearer_accepts_any_case_of_the_scheme() -> None:
    assert bearer("Bearer  tok ") == "tok"
    assert bearer("bearer tok") == bearer("BEARER tok") == "tok"


# -------------------------------------------------------------------- constant-time match
async def test_static_keys_are_compared_in_constant_time_as_hashes(spy: Spy, redis: Any) -> None:
    auth = authenticator(redis)
    principal = await auth.authenticate(f"Bearer {STATIC[0]}")
    assert principal.pool_allowed and not principal.holds_slot
    # every known key is compared (no early exit), and only digests are compared
    assert len(spy.calls) == len(STATIC)
    assert all(a == hash_key(STATIC[0]) for a, _ in spy.calls)
    assert sorted(b for _, b in spy.calls) == sorted(hash_key(k) for k in STATIC)
    assert not any(k in repr(spy.calls) for k in STATIC)
    spy.calls.clear()
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate("Bearer not-a-gateway-key")
    assert len(spy.calls) == len(STATIC)
    assert principal.key_id.startswith("env_") and STATIC[0][9:21] not in principal.key_id


async def test_a_static_key_gets_a_stable_id_that_is_not_the_key(redis: Any) -> None:
    auth = authenticator(redis)
    ids = {(await auth.authenticate(f"Bearer {k}")).key_id for k in STATIC}
    assert len(ids) == 3
    assert (await auth.authenticate(f"Bearer {STATIC[1]}")).key_id in ids


def request_with(admin_key: str | None, authorization: str | None) -> Any:
    settings = Settings(
        redis_url="redis://x", admin_key=SecretStr(admin_key) if admin_key else None
    )
    state = SimpleNamespace(orbyt=SimpleNamespace(settings=settings))
    headers = {"authorization": authorization} if authorization is not None else {}
    return SimpleNamespace(app=SimpleNamespace(state=state), headers=headers)


def test_admin_key_is_compared_in_constant_time(spy: Spy) -> None:
    good = "adm-" + "k" * 40
    assert admin(request_with(good, f"Bearer {good}")) is not None
    assert spy.calls == [(good.encode(), good.encode())]
    spy.calls.clear()
    for wrong in ("adm-", good + "x", "x" * len(good)):
        with pytest.raises(AuthenticationFailed):
            admin(request_with(good, f"Bearer {wrong}"))
    assert len(spy.calls) == 3


def test_admin_api_without_an_admin_key_is_forbidden(spy: Spy) -> None:
    with pytest.raises(PermissionDenied) as info:
        admin(request_with(None, "Bearer anything"))
    assert info.value.status == 403 and spy.calls == []
    empty = request_with(None, "Bearer anything")
    empty.app.state.orbyt.settings.admin_key = SecretStr("")  # ORBYT_ADMIN_KEY=""
    with pytest.raises(PermissionDenied):
        admin(empty)
    with pytest.raises(AuthenticationFailed):
        admin(request_with("adm-" + "k" * 40, None))


# --------------------------------------------------------------------------- key storage
async def test_keys_are_random_and_stored_only_as_hashes(redis: Any) -> None:
    store = KeyStore(redis)
    key, record = await store.create("svc", rpm=10, concurrency=2, pool=False)
    other, _ = await store.create("svc")
    assert key.startswith(PREFIX) and len(key) == len(PREFIX) + 64 and key != other
    dump = b""
    for name in await redis.keys("*"):
        kind = await redis.type(name)
        value = (
            await redis.hgetall(name)
            if kind == b"hash"
            else await redis.smembers(name)
            if kind == b"set"
            else await redis.get(name)
        )
        dump += name + repr(value).encode()
    assert key[len(PREFIX) :].encode() not in dump and other[len(PREFIX) :].encode() not in dump
    assert hash_key(key).encode() in dump
    found = await store.lookup(key)
    assert found == record and found is not None and not found.pool and found.rpm == 10
    assert await store.lookup(key + "0") is None
    assert "key" not in record.public()


async def test_revoke_and_list(redis: Any) -> None:
    store = KeyStore(redis)
    _, a = await store.create("a")
    _, b = await store.create("b")
    assert await store.revoke(a.id) and not await store.revoke("key_missing")
    listed = {k.id: k for k in await store.list()}
    assert listed[a.id].revoked and not listed[b.id].revoked
    got = await store.get(a.id)
    assert got is not None and got.revoked


# ---------------------------------------------------------------------------------- usage
def event(key_source: str, status: int = 200, usage: Any = None) -> UsageEvent:
    return UsageEvent(
        "key_1",
        "openai/gpt-5-mini",
        "openai",
        key_source,
        status,
        1,
        12.3,
        usage if usage is not None else {"prompt_tokens": 1000, "completion_tokens": 500},
    )


def test_usage_counters_bill_pool_and_mark_byok_provider_billed() -> None:
    catalog = default_catalog()
    info = catalog.get("openai/gpt-5-mini")
    assert info is not None and info.input_price is not None and info.output_price is not None
    cost = round(1000 * info.input_price + 500 * info.output_price)
    pool = counters(event("pool"), catalog)
    assert pool["cost_micros"] == cost and "byok_requests" not in pool
    assert pool["prompt_tokens"] == 1000 and pool["completion_tokens"] == 500
    byok = counters(event("byok"), catalog)
    assert byok["byok_requests"] == 1 and byok["provider_billed_cost_micros"] == cost
    assert "cost_micros" not in byok
    failed = counters(event("pool", status=429), catalog)
    assert failed == {"requests": 1, "attempts": 1, "latency_ms": 12, "errors": 1}
    cached = counters(
        event(
            "pool",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        ),
        catalog,
    )
    assert cached["cached_tokens"] == 4
