"""The official Node `openai` SDK reads a Responses stream through Orbyt (issue 13): the
SDK is installed from the npm registry into a temporary directory once per session; the
test is skipped, saying why, only when npm is missing (or the registry cannot be reached)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes import FakeOpenAI, Reply
from tests.gateway import GATEWAY_KEY, Gateway

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("node") / "responses_stream.mjs"


@pytest.fixture(scope="session")
def node_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose node_modules holds the `openai` package."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node are not installed: the Node SDK check needs them")
    where = tmp_path_factory.mktemp("node-openai")
    (where / "package.json").write_text('{"name": "orbyt-node-check", "private": true}')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "openai@^6"],
        cwd=where,
        capture_output=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm could not install openai: {done.stderr.decode()[-300:]}")
    return where


def test_node_sdk_reads_a_responses_stream(
    node_sdk: Path, gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        Reply(text="Checking.", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    )
    script = node_sdk / SCRIPT.name
    shutil.copy(SCRIPT, script)
    env = {
        **os.environ,
        "GATEWAY_BASE_URL": gateway.base_url,
        "GATEWAY_API_KEY": GATEWAY_KEY,
        "GATEWAY_MODEL": "openai/gpt-5-mini",
    }
    done = subprocess.run(
        ["node", str(script)], cwd=node_sdk, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    assert out["types"][:2] == ["response.created", "response.in_progress"]
    assert out["types"][-1] == "response.completed"
    assert out["text"] == "Checking."
    final = out["final"]
    assert final["status"] == "completed" and final["id"].startswith("resp_")
    call = next(item for item in final["output"] if item["type"] == "function_call")
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Oslo"}
    assert len(fake_openai.requests) == 1
