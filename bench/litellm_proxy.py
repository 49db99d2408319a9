"""LiteLLM proxy as a benchmark baseline, routed to the mock upstream, fully offline.

LiteLLM lives in its own virtualenv, ``bench/.venv-litellm`` (gitignored), created once
and reused: ``python bench/litellm_proxy.py install``. It is never imported here; the
harness only runs its ``litellm`` command with a generated config:

    model openai/gpt-bench  ->  openai/gpt-bench at the mock's /v1 with a dummy key

Start one by hand (the mock must be running):
    python bench/litellm_proxy.py start --port 4000 --mock-url http://127.0.0.1:9100/v1

Offline start: the environment below makes LiteLLM read its bundled model cost map,
beta-header, blog-post, policy and auto-router data instead of fetching them, and turns
telemetry off; there is no database (no spend logs), and a master key is checked on every
request like Orbyt's gateway keys. One worker process (``--num_workers 1``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venv-litellm"
LITELLM_BIN = VENV / "bin" / "litellm"
PACKAGE = "litellm[proxy]"
MASTER_KEY = "sk-litellm-bench"
MODEL = "openai/gpt-bench"

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "DISABLE_ADMIN_UI": "True",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "NO_PROXY": "127.0.0.1,localhost",
}


def is_installed() -> bool:
    return LITELLM_BIN.exists()


def install(quiet: bool = True) -> None:
    """Create ``bench/.venv-litellm`` and install LiteLLM's proxy into it (once)."""
    if is_installed():
        return
    print(f"installing {PACKAGE} into {VENV} (one time, a few minutes)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install"]
    if quiet:
        pip.append("-q")
    subprocess.run([*pip, PACKAGE], check=True)


def version() -> str:
    if not is_installed():
        return "not installed"
    out = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


def write_config(path: Path, mock_base_url: str) -> Path:
    """Write the proxy config routing ``openai/gpt-bench`` to the mock upstream."""
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: {MODEL}\n"
        f"      api_base: {mock_base_url}\n"
        "      api_key: sk-mock\n"
        "litellm_settings:\n"
        "  set_verbose: false\n"
        "  drop_params: true\n"
        "  request_timeout: 120\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
        "  disable_spend_logs: true\n"
    )
    return path


def command(config: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        str(LITELLM_BIN),
        "--config",
        str(config),
        "--host",
        host,
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
    ]


def env(base: dict[str, str] | None = None) -> dict[str, str]:
    out = dict(os.environ if base is None else base)
    out.pop("VIRTUAL_ENV", None)
    out.update(OFFLINE_ENV)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="create bench/.venv-litellm (no-op when present)")
    start = sub.add_parser("start", help="run the proxy in the foreground")
    start.add_argument("--port", type=int, default=4000)
    start.add_argument("--mock-url", default="http://127.0.0.1:9100/v1")
    start.add_argument("--config", type=Path, default=BENCH_DIR / "out" / "litellm.yaml")
    args = parser.parse_args(argv)
    install()
    if args.cmd == "install":
        print(f"litellm {version()} ready at {LITELLM_BIN}")
        return 0
    args.config.parent.mkdir(parents=True, exist_ok=True)
    write_config(args.config, args.mock_url)
    os.execve(str(LITELLM_BIN), command(args.config, args.port), env())
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
