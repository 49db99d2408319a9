"""The Node `openai` SDK against Orbyt: one embeddings call (issue 13).

The SDK is installed from the npm registry into a temporary directory once per session;
without npm the test is skipped (saying so). The SDK asks for base64 by default and
decodes it, so this also checks Orbyt's base64 rendering from another language.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import FakeOpenAI
from tests.fakes.embeddings import vector
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SCRIPT = """
const OpenAI = require("openai");
const client = new OpenAI({ baseURL: process.argv[2], apiKey: process.argv[3], maxRetries: 0 });
client.embeddings
  .create({ model: "openai/text-embedding-3-small", input: ["a", "b"] })
  .then((res) => {
    const data = res.data.map((d) => ({ index: d.index, embedding: Array.from(d.embedding) }));
    console.log(JSON.stringify({ model: res.model, data, usage: res.usage }));
  })
  .catch((err) => { console.error(String(err)); process.exit(1); });
"""


@pytest.fixture(scope="session")
def node_openai() -> Iterator[Path]:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node not installed: the Node openai SDK test needs them")
    root = Path(tempfile.mkdtemp(prefix="orbyt-node-sdk-"))
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "openai"],
            cwd=root,
            check=True,
            timeout=100,
            capture_output=True,
        )
        (root / "embed.js").write_text(SCRIPT)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_node_sdk_embeddings(node_openai: Path, redis_server: RedisServer) -> None:
    with FakeOpenAI() as fake:
        env = {
            "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake.base_url,
            "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-pool-openai-1",
        }
        with Gateway(redis_server.new_db_url(), env) as gw:
            out = subprocess.run(
                ["node", "embed.js", gw.base_url, GATEWAY_KEY],
                cwd=node_openai,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert fake.last.json["encoding_format"] == "base64"
    assert res["model"] == "openai/text-embedding-3-small"
    assert [d["index"] for d in res["data"]] == [0, 1]
    want = vector("b", 1536)
    got = res["data"][1]["embedding"]
    assert len(got) == 1536
    assert all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(got, want, strict=True))
    assert res["usage"]["prompt_tokens"] > 0
