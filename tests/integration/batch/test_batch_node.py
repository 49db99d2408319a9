"""The official Node `openai` SDK (installed from the npm registry into a temporary
directory once per session) runs a batch end to end: upload, create, poll, download the
output, list batches. Skipped only when `npm`/`node` are missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import GATEWAY_KEY, Gateway
from tests.integration.batch.support import MODEL

pytestmark = pytest.mark.integration

NODE_SDK = "openai@7"

SCRIPT = r"""
import OpenAI, { toFile } from "openai";

const { BASE_URL, KEY } = process.env;
const client = new OpenAI({ baseURL: BASE_URL, apiKey: KEY, maxRetries: 0 });
const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({
  custom_id: `node-${i}`, method: "POST", url: "/v1/chat/completions",
  body: { model: process.env.MODEL, messages: [{ role: "user", content: `hello ${i}` }] },
}));
lines.push(JSON.stringify({
  custom_id: "node-bad", method: "POST", url: "/v1/chat/completions",
  body: { model: process.env.MODEL, messages: [{ role: "user", content: "FAIL" }] },
}));
const input = await toFile(Buffer.from(lines.join("\n") + "\n"), "input.jsonl");
const file = await client.files.create({ file: input, purpose: "batch" });
let batch = await client.batches.create({
  input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h",
  metadata: { sdk: "node" },
});
const done = ["completed", "failed", "expired", "cancelled"];
const end = Date.now() + 20000;
while (!done.includes(batch.status) && Date.now() < end) {
  await new Promise((r) => setTimeout(r, 100));
  batch = await client.batches.retrieve(batch.id);
}
const ids = async (fileId) => fileId
  ? (await (await client.files.content(fileId)).text()).trim().split("\n").map((l) => JSON.parse(l))
  : [];
const output = await ids(batch.output_file_id);
const errors = await ids(batch.error_file_id);
const listed = [];
for await (const b of client.batches.list({ limit: 1 })) listed.push(b.id);
console.log(JSON.stringify({
  id: batch.id, status: batch.status, counts: batch.request_counts, metadata: batch.metadata,
  output: output.map((x) => [x.custom_id, x.response.status_code, x.response.body.object]),
  errors: errors.map((x) => [x.custom_id, x.response.status_code]),
  listed,
}));
"""


@pytest.fixture(scope="session")
def node_sdk() -> Iterator[Path]:
    """A directory with the Node `openai` package installed (npm registry)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("the Node SDK test needs `npm` and `node` on PATH")
    path = Path(tempfile.mkdtemp(prefix="orbyt-node-sdk-"))
    (path / "package.json").write_text('{"name": "orbyt-node-sdk-test", "type": "module"}')
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", NODE_SDK],
        cwd=path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"npm install {NODE_SDK} failed:\n{proc.stderr[-2000:]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_node_sdk_runs_a_batch(node_sdk: Path, gateway: Gateway) -> None:
    script = node_sdk / "batch.mjs"
    script.write_text(SCRIPT)
    env = {**os.environ, "BASE_URL": gateway.base_url, "KEY": GATEWAY_KEY, "MODEL": MODEL}
    proc = subprocess.run(
        ["node", str(script)], cwd=node_sdk, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["status"] == "completed"
    assert got["counts"] == {"total": 7, "completed": 6, "failed": 1}
    assert got["metadata"] == {"sdk": "node"}
    assert sorted(got["output"]) == [[f"node-{i}", 200, "chat.completion"] for i in range(6)]
    assert got["errors"] == [["node-bad", 400]]
    assert got["id"] in got["listed"]  # auto-pagination over limit=1 pages
