import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orbyt.shared.catalog import catalog_for, default_catalog, load_catalog
from orbyt.shared.settings import Settings

REQUIRED = ["google/gemini-3.1-pro", "google/gemini-3-flash-preview", "anthropic/claude-3-haiku"]


def test_shipped_catalog_has_every_provider_and_the_seed_models() -> None:
    catalog = default_catalog()
    for model in REQUIRED:
        assert catalog.get(model) is not None, model
    providers = {m.provider for m in catalog.models}
    assert {"openai", "anthropic", "google", "mistral", "deepseek", "mock"} <= providers
    for m in catalog.models:
        assert m.context_window and m.input_price is not None and m.output_price is not None


def test_upstream_id_defaults_to_the_part_after_the_provider() -> None:
    catalog = default_catalog()
    assert catalog.get("openai/gpt-5-mini").upstream == "gpt-5-mini"  # type: ignore[union-attr]
    assert catalog.get("anthropic/claude-3-haiku").upstream.startswith("claude-3-haiku")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        '{"models": [{"id": "nolash"}]}',
        '{"models": [{"id": "a/b", "capabilities": ["telepathy"]}]}',
        '{"models": [{"id": "a/b"}, {"id": "a/b"}]}',
    ],
)
def test_bad_catalogs_are_rejected(tmp_path: Path, body: str) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(body)
    with pytest.raises(ValueError):
        load_catalog(path)


# ------------------------------------------------------------------ declared models
LLAMA = {
    "id": "llama-3-8b",
    "context_window": 8192,
    "capabilities": ["prefill"],
    "input_price": 0.1,
    "output_price": 0.2,
}


def _settings(providers: dict[str, Any]) -> Settings:
    return Settings(providers=providers)


def test_a_model_missing_from_the_catalog_has_no_capabilities() -> None:
    """The observation: an upstream's model not in the catalog can never be continued
    (prefill), chosen by context window or priced."""
    assert default_catalog().get("myvllm/llama-3-8b") is None


def test_declared_models_are_merged_over_the_shipped_catalog() -> None:
    shipped = load_catalog()
    settings = _settings(
        {
            "myvllm": {"adapter": "openai", "models": [LLAMA]},
            "openai": {"models": [{"id": "gpt-5-mini", "input_price": 9.0, "output_price": 9.0}]},
        }
    )
    catalog = catalog_for(settings)
    llama = catalog.get("myvllm/llama-3-8b")
    assert llama is not None and llama.upstream == "llama-3-8b"
    assert llama.context_window == 8192 and llama.capabilities == {"prefill"}
    assert llama.blended_price == pytest.approx(0.3)
    mini = catalog.get("openai/gpt-5-mini")  # a declared model overrides the shipped entry
    assert mini is not None and mini.input_price == 9.0 and mini.capabilities == frozenset()
    assert [m.id for m in catalog.models][: len(shipped.models)] == [m.id for m in shipped.models]
    assert len(catalog.models) == len(shipped.models) + 1
    assert catalog_for(_settings({})).models == shipped.models


def test_declared_ids_may_hold_slashes_and_an_upstream_name() -> None:
    settings = _settings(
        {"myvllm": {"models": [{"id": "meta-llama/Llama-3-8B", "upstream": "/models/llama"}]}}
    )
    info = catalog_for(settings).get("myvllm/meta-llama/Llama-3-8B")
    assert info is not None and info.provider == "myvllm" and info.upstream == "/models/llama"


@pytest.mark.parametrize(
    "models",
    [
        [{"id": "m", "capabilities": ["telepathy"]}],
        [{"id": "m", "context_windw": 8192}],  # a typo is an error, not silently ignored
        [{"id": ""}],
        [{"id": "m", "input_price": -1}],
    ],
)
def test_bad_declared_models_are_rejected(models: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        _settings({"myvllm": {"models": models}})


def test_a_model_declared_twice_is_rejected() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        catalog_for(_settings({"myvllm": {"models": [LLAMA, LLAMA]}}))


def test_declared_models_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORBYT_PROVIDERS__MYVLLM__ADAPTER", "openai")
    monkeypatch.setenv("ORBYT_PROVIDERS__MYVLLM__MODELS", json.dumps([LLAMA]))
    info = catalog_for(Settings()).get("myvllm/llama-3-8b")
    assert info is not None and info.capabilities == {"prefill"} and info.output_price == 0.2


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_declared_models_from_a_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    path = tmp_path / f"orbyt{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"providers": {"myvllm": {"models": [LLAMA]}}}))
    else:
        path.write_text(
            "[[providers.myvllm.models]]\n"
            'id = "llama-3-8b"\ncontext_window = 8192\ncapabilities = ["prefill"]\n'
            "input_price = 0.1\noutput_price = 0.2\n"
        )
    monkeypatch.setenv("ORBYT_CONFIG", str(path))
    info = catalog_for(Settings()).get("myvllm/llama-3-8b")
    assert info is not None and info.context_window == 8192 and info.capabilities == {"prefill"}


def test_the_mock_models_are_in_the_catalog() -> None:
    catalog = default_catalog()
    for name in ("echo", "echo-backup", "flaky-503", "rate-limited", "cut"):
        info = catalog.get(f"mock/{name}")
        assert info is not None and "prefill" in info.capabilities, name
