"""The BYOK side-car at the unit level (DESIGN §5): validated and sealed by the API, read
exactly once by the worker, and never quoted back in an error."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr

from orbyt.api.auth import byok_map, seal_sidecar
from orbyt.shared.contract import Candidate, byok_key
from orbyt.shared.errors import (
    Disposition,
    InvalidRequest,
    OrbytError,
    ServiceUnavailable,
    UpstreamError,
)
from orbyt.shared.secret import Secret
from orbyt.shared.settings import Settings
from orbyt.shared.wire import Extra
from orbyt.worker.byok import scrub, scrub_error, take_byok

SECRET = "Zt8qL2mVx9RwK4pN7sJc3hY6bD1fG5aQ0eUiOoTr"
OPENAI = "sk-proj-" + "a1B2c3D4e5F6" * 6 + "T3BlbkFJ" + "g7H8i9J0k1L2" * 6
ANTHROPIC = "sk-ant-api03-" + "Zx8Yw7Vu6Ts5" * 7 + "R4Qp3On2m" + "AA"
SHAPELESS = "Zq4Wm8Rt2Xy6Kp0Lv3Nb7Hc1Fd5Gs9Jw"


async def park_byok(redis: Any, settings: Settings, rid: str, keys: dict[str, str]) -> None:
    """The side-car as the chat route writes it (inside the enqueue), on its own."""
    key, blob, ttl_ms = seal_sidecar(settings, rid, keys)
    await redis.set(key, blob, px=ttl_ms)


def settings(**kw: Any) -> Settings:
    return Settings(redis_url="redis://x", secret_key=SecretStr(SECRET), byok_ttl=30, **kw)


def plan(*providers: str) -> list[Candidate]:
    return [
        Candidate(model=f"{p}/m", provider=p, upstream="m", key_source="byok") for p in providers
    ]


@pytest.fixture
def redis() -> fakeredis.aioredis.FakeRedis:
    return fakeredis.aioredis.FakeRedis()


def test_a_string_is_for_the_primary_provider_an_object_names_them() -> None:
    assert byok_map(Extra(byok=OPENAI), plan("openai", "anthropic")) == {"openai": OPENAI}
    both = {"openai": OPENAI, "anthropic": ANTHROPIC}
    assert byok_map(Extra(byok=both), plan("openai", "anthropic")) == both


@pytest.mark.parametrize(
    ("byok", "primary"),
    [
        (ANTHROPIC, "openai"),
        (OPENAI, "anthropic"),
        ({"openai": ANTHROPIC}, "openai"),
        ({"anthropic": SHAPELESS}, "openai"),
        (SHAPELESS + "\n", "myvllm"),
    ],
)
def test_a_mismatched_key_is_a_400_that_never_quotes_it(byok: Any, primary: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        byok_map(Extra(byok=byok), plan(primary))
    err = info.value
    assert err.status == 400 and err.param == "extra.byok" and err.code == "invalid_byok_key"
    text = repr(err.body()) + str(err)
    for key in (OPENAI, ANTHROPIC, SHAPELESS):
        assert key[8:30] not in text


async def test_parked_sealed_with_a_ttl_and_read_exactly_once(redis: Any) -> None:
    keys = {"openai": OPENAI, "myvllm": SHAPELESS}
    await park_byok(redis, settings(), "rid-1", keys)
    blob = await redis.get(byok_key("rid-1"))
    for key in keys.values():
        assert key.encode() not in blob and key[10:30].encode() not in blob
    assert 0 < await redis.pttl(byok_key("rid-1")) <= 30_000
    taken = await take_byok(redis, settings().secrets(), "rid-1")
    assert {p: k.reveal() for p, k in taken.items()} == keys
    assert all(isinstance(k, Secret) and repr(k) == "Secret('***')" for k in taken.values())
    assert await redis.exists(byok_key("rid-1")) == 0
    with pytest.raises(UpstreamError) as again:  # a re-run finds nothing: never the pool
        await take_byok(redis, settings().secrets(), "rid-1")
    assert again.value.status == 400 and again.value.code == "byok_key_unavailable"
    assert "send the request again" in again.value.message


async def test_a_blob_is_bound_to_its_request_and_secret(redis: Any) -> None:
    await park_byok(redis, settings(), "rid-a", {"openai": OPENAI})
    await redis.rename(byok_key("rid-a"), byok_key("rid-b"))  # replayed under another id
    with pytest.raises(UpstreamError) as info:
        await take_byok(redis, settings().secrets(), "rid-b")
    assert info.value.code == "byok_key_unavailable" and OPENAI not in info.value.message
    await park_byok(redis, settings(), "rid-c", {"openai": OPENAI})
    other = Settings(redis_url="redis://x", secret_key=SecretStr("Q" * 8 + SECRET[8:]))
    with pytest.raises(UpstreamError) as wrong:
        await take_byok(redis, other.secrets(), "rid-c")
    assert "ORBYT_SECRET_KEY" in wrong.value.message
    rotated = Settings(
        redis_url="redis://x",
        secret_key=SecretStr("Q" * 8 + SECRET[8:]),
        old_secret_keys=[SecretStr(SECRET)],
    )
    await park_byok(redis, settings(), "rid-d", {"openai": OPENAI})
    assert (await take_byok(redis, rotated.secrets(), "rid-d"))["openai"].reveal() == OPENAI


async def test_no_secret_no_byok(redis: Any) -> None:
    with pytest.raises(ServiceUnavailable) as info:
        await park_byok(redis, Settings(redis_url="redis://x"), "rid", {"openai": OPENAI})
    assert info.value.code == "byok_disabled" and await redis.keys("*") == []


# ------------------------------------------------------------------------------- scrubbing
def test_scrub_removes_every_occurrence_of_each_key() -> None:
    text = f"Incorrect API key provided: {OPENAI}. Again: {OPENAI}; other {SHAPELESS}"
    out = scrub(text, [Secret(OPENAI), Secret(SHAPELESS), None])
    assert OPENAI not in out and SHAPELESS not in out and out.count("***") == 3
    assert scrub("short key abc", [Secret("abc")]) == "short key abc"  # stubs are left alone
    assert scrub("nothing here", []) == "nothing here"


def test_scrub_error_covers_what_a_caller_or_a_log_can_see() -> None:
    err = UpstreamError(
        f"openai: bad key {SHAPELESS}",
        status=401,
        disposition=Disposition.AUTH,
        param=f"key={SHAPELESS}",
        code=SHAPELESS,
        headers={"x-echo": SHAPELESS},
    )
    assert scrub_error(err, Secret(SHAPELESS)) is err
    shown = repr(err.body()) + str(err) + repr(err.args) + repr(err.response_headers())
    assert SHAPELESS not in shown and "***" in err.message
    plain = OrbytError(f"x {OPENAI}")
    scrub_error(plain, [Secret(OPENAI)])
    assert OPENAI not in str(plain)
    untouched = OrbytError("no key here", code="c")
    assert scrub_error(untouched, None).message == "no key here"
