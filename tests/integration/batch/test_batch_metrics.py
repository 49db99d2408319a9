"""A worker's Prometheus metrics count batch lines once each, by model, provider and
outcome, and show what is in flight and how batches ended."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway import Gateway, RedisServer, free_port
from tests.integration.batch.conftest import assert_no_errors, gateway_env
from tests.integration.batch.support import MODEL, MarkerOpenAI, client, line, submit, wait

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def metrics_gateway(redis_server: RedisServer, fake: MarkerOpenAI) -> Iterator[tuple[Gateway, str]]:
    port = free_port()
    env = gateway_env(fake, ORBYT_WORKER_METRICS_PORT=str(port))
    with Gateway(redis_server.new_db_url(), env, workers=1) as gw:
        yield gw, f"http://127.0.0.1:{port}/metrics"
        assert_no_errors(gw)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_batch_lines_are_counted_once(metrics_gateway: tuple[Gateway, str]) -> None:
    gw, url = metrics_gateway
    c = client(gw.base_url)
    lines = [line(f"ok-{i}", f"hi {i}") for i in range(12)] + [line("bad", "FAIL")]
    done = wait(c, submit(c, lines).id)
    assert done.status == "completed"
    slow = submit(c, [line(f"s-{i}", f"SLOW {i}") for i in range(200)])
    wait(c, slow.id, until=("in_progress",))
    c.batches.cancel(slow.id)
    assert wait(c, slow.id).status == "cancelled"

    got = scrape(url)
    done_key = (("model", MODEL), ("outcome", "done"), ("provider", "openai"))
    failed_key = (("model", MODEL), ("outcome", "failed"), ("provider", "openai"))
    answered = got[("orbyt_batch_lines_total", done_key)]
    assert 12 <= answered < 12 + 200  # the first batch, and what ran of the cancelled one
    assert got[("orbyt_batch_lines_total", failed_key)] == 1
    assert got[("orbyt_batch_lines_in_flight", ())] == 0
    finished = "orbyt_batches_finished_total"
    assert got[(finished, (("status", "completed"),))] == 1
    assert got[(finished, (("status", "cancelled"),))] == 1
