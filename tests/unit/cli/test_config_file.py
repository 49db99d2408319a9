"""The config file (`ORBYT_CONFIG`) in each format, its errors, and the unknown-name
warnings for `ORBYT_*` variables and config-file keys."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from orbyt.shared.config_file import (
    ConfigFileError,
    config_warnings,
    unknown_env_vars,
    validation_summary,
)
from orbyt.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]

YAML = """\
redis_url: redis://10.0.0.5:6380/2
pickup_timeout: 2.5
providers:
  myvllm:
    adapter: openai
    base_url: http://127.0.0.1:8000/v1
    keys: [sk-local-1, sk-local-2]
mock:
  ttft_ms: 40
"""
TOML = """\
redis_url = "redis://10.0.0.5:6380/2"
pickup_timeout = 2.5

[providers.myvllm]
adapter = "openai"
base_url = "http://127.0.0.1:8000/v1"
keys = ["sk-local-1", "sk-local-2"]

[mock]
ttft_ms = 40
"""
JSON = json.dumps(
    {
        "redis_url": "redis://10.0.0.5:6380/2",
        "pickup_timeout": 2.5,
        "providers": {
            "myvllm": {
                "adapter": "openai",
                "base_url": "http://127.0.0.1:8000/v1",
                "keys": ["sk-local-1", "sk-local-2"],
            }
        },
        "mock": {"ttft_ms": 40},
    }
)


# misspelt on purpose in these tests and in tests/integration/test_{cli,dev_runner}.py
TYPOS = {
    "ORBYT_WORKR_MAX_JOBS",
    "ORBYT_MOCK__TTFT",
    "ORBYT_PROVIDERS__MYVLLM__ADAPTR",
    "ORBYT_NOTHING_LIKE_IT",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.upper().startswith("ORBYT_") or v == "REDIS_URL"]:
        monkeypatch.delenv(var)


def load(monkeypatch: pytest.MonkeyPatch, path: Path) -> Settings:
    monkeypatch.setenv("ORBYT_CONFIG", str(path))
    return Settings()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "text"),
    [("orbyt.yaml", YAML), ("orbyt.yml", YAML), ("o.toml", TOML), ("o.json", JSON)],
)
def test_each_format_gives_the_same_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    settings = load(monkeypatch, path)
    assert settings.redis_url == "redis://10.0.0.5:6380/2"
    assert settings.pickup_timeout == 2.5
    vllm = settings.provider("myvllm")
    assert (vllm.adapter, vllm.base_url) == ("openai", "http://127.0.0.1:8000/v1")
    assert [k.get_secret_value() for k in vllm.keys] == ["sk-local-1", "sk-local-2"]
    assert settings.mock.ttft_ms == 40 and settings.mock.token_ms == 0


def test_the_environment_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "orbyt.yaml"
    path.write_text(YAML)
    monkeypatch.setenv("ORBYT_PICKUP_TIMEOUT", "9")
    monkeypatch.setenv("ORBYT_MOCK__TTFT_MS", "7")
    settings = load(monkeypatch, path)
    assert settings.pickup_timeout == 9 and settings.mock.ttft_ms == 7
    assert settings.redis_url == "redis://10.0.0.5:6380/2"


def test_an_empty_yaml_file_is_no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "orbyt.yaml"
    path.write_text("# nothing yet\n")
    assert load(monkeypatch, path).redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("missing.yaml", None, "no such file"),
        ("bad.yaml", "redis_url: [unclosed\n", r"invalid YAML: .* \(line 2, column 1\)"),
        ("bad.toml", "redis_url = \n", r"invalid TOML: .*line 1"),
        ("bad.json", '{"redis_url": }', r"invalid JSON: .*line 1 column 15"),
        ("list.yaml", "- a\n- b\n", "the top level must be a mapping, not list"),
        ("orbyt.ini", "[x]\n", r"unknown format \(use a .yaml, .yml, .toml or .json file\)"),
    ],
)
def test_a_bad_or_missing_file_names_the_path_and_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str | None, reason: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigFileError) as caught:
        load(monkeypatch, path)
    message = str(caught.value)
    assert message.startswith(f"config file {path}: ")
    assert re.search(reason, message), message
    assert "\n" not in message


def test_an_invalid_value_is_one_line_without_the_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "orbyt.yaml"
    path.write_text("worker_max_jobs: sk-pasted-secret-value\nenv: staging\n")
    with pytest.raises(ValidationError) as caught:
        load(monkeypatch, path)
    summary = validation_summary(caught.value)
    assert summary.startswith("invalid settings: ")
    assert "worker_max_jobs" in summary and "env" in summary
    assert "sk-pasted" not in summary and "\n" not in summary


def test_a_typo_in_an_orbyt_variable_warns_with_a_suggestion() -> None:
    environ = {
        "ORBYT_WORKR_MAX_JOBS": "5",
        "ORBYT_MOCK__TTFT": "5",
        "ORBYT_PROVIDERS__MYVLLM__ADAPTR": "openai",
        "ORBYT_NOTHING_LIKE_IT": "1",
    }
    warnings = unknown_env_vars(environ, Settings)
    assert warnings == [
        "unknown setting ORBYT_MOCK__TTFT is ignored (did you mean ORBYT_MOCK__TTFT_MS?)",
        "unknown setting ORBYT_NOTHING_LIKE_IT is ignored",
        "unknown setting ORBYT_PROVIDERS__MYVLLM__ADAPTR is ignored"
        " (did you mean ORBYT_PROVIDERS__MYVLLM__ADAPTER?)",
        "unknown setting ORBYT_WORKR_MAX_JOBS is ignored (did you mean ORBYT_WORKER_MAX_JOBS?)",
    ]


def test_settings_and_variables_read_elsewhere_do_not_warn() -> None:
    environ = {
        "ORBYT_REDIS_URL": "redis://x",
        "REDIS_URL": "redis://x",
        "orbyt_pickup_timeout": "1",  # pydantic-settings reads names in any case
        "ORBYT_MOCK__TOKEN_MS": "1",
        "ORBYT_PROVIDERS__MYVLLM__ADAPTER": "openai",
        "ORBYT_PROVIDERS__ANTHROPIC__DEPLOYMENTS": "[]",
        "ORBYT_PROVIDERS": "{}",
        "ORBYT_ENV": "dev",
        "ORBYT_CONFIG": "",
        "ORBYT_HOST": "::",
        "ORBYT_PORT": "1",
        "ORBYT_REDIS_SERVER": "/usr/bin/redis-server",
        "ORBYT_COVERAGE_FLOOR": "90",
        "ORBYT_BENCH_SRC": "/tmp",
        "ORBYT_LOG_FORMAT": "text",
        "ORBYT_DEV_KEY": "x",
        "ORBYT_DEV_REDIS": "fakeredis",
        "PATH": "/bin",
    }
    assert unknown_env_vars(environ, Settings) == []


def test_no_orbyt_variable_the_repository_uses_warns() -> None:
    """Every quoted `ORBYT_*` name in the code, tests, bench and deployment files is a
    setting or listed in `config_file.OUTSIDE_SETTINGS` (add new ones there)."""
    names: set[str] = set()
    files = [*ROOT.glob("src/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]
    for path in files:
        names |= set(re.findall(r"[\"'](ORBYT_[A-Z0-9_]+)[\"'=]", path.read_text()))
    for path in [ROOT / "docker-compose.yml", ROOT / "Makefile", *ROOT.glob("scripts/*.sh")]:
        names |= set(re.findall(r"\b(ORBYT_[A-Z0-9]+(?:_[A-Z0-9]+)*)", path.read_text()))
    names -= {"ORBYT_", *TYPOS}
    environ = {name.rstrip("_"): "x" for name in names if not name.endswith("__")}
    assert unknown_env_vars(environ, Settings) == []


def test_unknown_config_file_keys_warn_too(tmp_path: Path) -> None:
    path = tmp_path / "orbyt.yaml"
    path.write_text("redis_url: redis://x\npickup_timout: 3\n")
    warnings = config_warnings({"ORBYT_CONFIG": str(path)}, Settings)
    assert warnings == [
        "unknown key 'pickup_timout' in the config file is ignored (did you mean pickup_timeout?)"
    ]
