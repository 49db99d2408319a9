from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from tests.gateway import Gateway, RedisServer
from tests.integration.batch.support import MarkerOpenAI

BATCH_ENV = {
    "ORBYT_BATCH_LEASE": "2",
    "ORBYT_BACKOFF_BASE": "0.05",
    "ORBYT_BACKOFF_CAP": "0.2",
    "ORBYT_WORKER_POLL_DELAY": "0.1",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[MarkerOpenAI]:
    with MarkerOpenAI() as fake:
        yield fake


def gateway_env(fake: MarkerOpenAI, **extra: str) -> dict[str, str]:
    return {
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": '["sk-pool-openai-1"]',
        "ORBYT_FILE_STORE": tempfile.mkdtemp(prefix="orbyt-test-files-"),
        **BATCH_ENV,
        **extra,
    }


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer, fake: MarkerOpenAI) -> Iterator[Gateway]:
    with Gateway(redis_server.new_db_url(), gateway_env(fake), workers=1) as gw:
        yield gw
        assert_no_errors(gw)


def assert_no_errors(gw: Gateway) -> None:
    """ERROR log lines mean bugs."""
    bad = [x for x in gw.all_logs().splitlines() if '"level":"error"' in x]
    assert not bad, bad[:5]
