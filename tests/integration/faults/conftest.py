"""One gateway per fault module on the shared fakes; every test starts from clean fakes and
clean route health."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway import Gateway, RedisServer
from tests.integration.faults_support import Fakes, forget_health, running_fakes


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer, fakes: Fakes) -> Iterator[Gateway]:
    with Gateway(redis_server.new_db_url(), fakes.env(), workers=1) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _clean(gw: Gateway, fakes: Fakes) -> None:
    fakes.reset()
    forget_health(gw)
