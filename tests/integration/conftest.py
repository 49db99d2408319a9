from collections.abc import Iterator

import pytest

from tests.fakes import FakeOpenAI
from tests.gateway import Gateway, RedisServer


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("fake_openai",):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer, fake_openai: FakeOpenAI) -> Iterator[Gateway]:
    env = {
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake_openai.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": '["sk-pool-openai-1"]',
        "ORBYT_PROVIDERS__MYVLLM__ADAPTER": "openai",
        "ORBYT_PROVIDERS__MYVLLM__BASE_URL": fake_openai.base_url,
        "ORBYT_PROVIDERS__MYVLLM__KEYS": "sk-vllm-local",
    }
    with Gateway(redis_server.new_db_url(), env, workers=2) as gw:
        yield gw
