from pathlib import Path

import pytest

from orbyt.shared.catalog import default_catalog, load_catalog

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
