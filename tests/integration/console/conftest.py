"""One gateway for the console suite (security checks and the browser run): an admin key,
the OpenAI fake behind the pool (its SLOW marker keeps a batch running), a second
OpenAI-compatible provider `flaky` whose fake is made to fail to open its breaker, and a
file store for batches."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import FakeOpenAI, Reply
from tests.gateway import Gateway, RedisServer
from tests.integration.batch.support import MarkerOpenAI

ADMIN_KEY = "orbyt-admin-" + "Vw7nK2qZ9xL4pR8t" * 2
POOL_KEY = "sk-pool-openai-console-0123456789abcdef"
FLAKY_KEY = "sk-pool-flaky-console-0123456789abcdef01"
FLAKY_KEY_2 = "sk-pool-flaky-console-2-fedcba9876543210"
SESSION_TTL = 900


@pytest.fixture(scope="package")
def fake() -> Iterator[MarkerOpenAI]:
    with MarkerOpenAI() as f:
        yield f


@pytest.fixture(scope="package")
def flaky() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as f:
        yield f


@pytest.fixture(scope="package")
def gw(redis_server: RedisServer, fake: MarkerOpenAI, flaky: FakeOpenAI) -> Iterator[Gateway]:
    env = {
        "ORBYT_ADMIN_KEY": ADMIN_KEY,
        "ORBYT_CONSOLE_SESSION_TTL": str(SESSION_TTL),
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": POOL_KEY,
        "ORBYT_PROVIDERS__FLAKY__ADAPTER": "openai",
        "ORBYT_PROVIDERS__FLAKY__BASE_URL": flaky.base_url,
        "ORBYT_PROVIDERS__FLAKY__KEYS": f'["{FLAKY_KEY}", "{FLAKY_KEY_2}"]',
        "ORBYT_FILE_STORE": tempfile.mkdtemp(prefix="orbyt-test-files-"),
        "ORBYT_BATCH_LEASE": "2",
        "ORBYT_BATCH_CONCURRENCY": "4",  # a 300-line SLOW batch runs ~20 s: time to cancel
        "ORBYT_WORKER_POLL_DELAY": "0.1",
        "ORBYT_BACKOFF_BASE": "0.05",
        "ORBYT_BACKOFF_CAP": "0.2",
    }
    with Gateway(redis_server.new_db_url(), env, workers=1) as gateway:
        yield gateway
        bad = [x for x in gateway.all_logs().splitlines() if '"level":"error"' in x]
        assert not bad, bad[:5]


@pytest.fixture(autouse=True)
def _healthy_flaky(flaky: FakeOpenAI) -> None:
    flaky.reset()
    flaky.default = Reply()


def sign_in(gw: Gateway, key: str = ADMIN_KEY) -> tuple[httpx.Client, str]:
    """A client holding a console session, and the session's CSRF token."""
    client = httpx.Client(base_url=gw.url(), follow_redirects=False, timeout=20)
    form = client.get("/console/login")
    token = login_token(form.text)
    resp = client.post("/console/login", data={"login_token": token, "admin_key": key})
    assert resp.status_code == 303, resp.text
    page = client.get("/console/keys")
    return client, csrf_of(page.text)


def login_token(html: str) -> str:
    found = re.search(r'name="login_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found is not None
    return found.group(1)
