"""The file store against a local directory and a real S3-compatible server on loopback
(moto in server mode), and a whole batch with its files on that S3 server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator

import pytest

from orbyt.cli.embedded_redis import free_port, wait_port
from orbyt.shared.filestore import FileMissing, open_store
from tests.gateway import Gateway, RedisServer
from tests.integration.batch.conftest import gateway_env
from tests.integration.batch.support import MarkerOpenAI, client, line, results, submit, wait

pytestmark = pytest.mark.integration

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with bucket `orbyt-test`; yields its endpoint."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/orbyt-test", method="PUT"))
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_env(s3: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**S3_ENV, "AWS_ENDPOINT_URL": s3}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.parametrize("kind", ["local", "s3"])
async def test_store_roundtrip(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "s3":
        request.getfixturevalue("s3_env")
        url = "s3://orbyt-test/unit"
    else:
        url = "file://" + tempfile.mkdtemp(prefix="orbyt-fs-")
    store = open_store(url)
    await store.put("files/a", b"hello\n")
    assert await store.get("files/a") == b"hello\n"
    assert await store.exists("files/a")
    assert not await store.exists("files/b")
    await store.delete("files/a")
    await store.delete("files/a")  # missing is fine
    with pytest.raises(FileMissing):
        await store.get("files/a")


def test_plain_path_is_a_local_directory() -> None:
    path = tempfile.mkdtemp(prefix="orbyt-fs-")
    store = open_store(os.path.join(path, "nested"))
    assert os.path.isdir(os.path.join(path, "nested")) and store.description.endswith("nested")
    with pytest.raises(ValueError):
        open_store("ftp://nope/")


def test_batch_on_s3(redis_server: RedisServer, fake: MarkerOpenAI, s3_env: dict[str, str]) -> None:
    env = {**gateway_env(fake), **s3_env, "ORBYT_FILE_STORE": "s3://orbyt-test/gw"}
    with Gateway(redis_server.new_db_url(), env, workers=1) as gw:
        c = client(gw.base_url)
        done = wait(c, submit(c, [line(f"q{i}", f"hi {i}") for i in range(30)]).id)
        assert done.status == "completed"
        out, err = results(c, done)
        assert sorted(x["custom_id"] for x in out) == sorted(f"q{i}" for i in range(30))
        assert not err
    listing = urllib.request.urlopen(f"{s3_env['AWS_ENDPOINT_URL']}/orbyt-test?list-type=2")
    assert b"gw/files/" in listing.read()
