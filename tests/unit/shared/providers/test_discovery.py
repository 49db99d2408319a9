"""Discovery: every provider subpackage's `ADAPTER` is found by name, with no registry."""

from __future__ import annotations

import importlib

import pytest

from orbyt.shared.providers import StreamState, Target, adapters, get_adapter
from orbyt.shared.providers.openai.dialect import OpenAIDialect

BUILT_IN = {"anthropic", "deepseek", "google", "mistral", "mock", "openai"}
ROLES = ("request", "response", "stream", "errors")
TARGET = Target("p", "p/m", "m", "http://upstream.invalid", None)


def test_every_subpackage_adapter_is_found_by_its_name() -> None:
    assert set(adapters()) == BUILT_IN
    for name in BUILT_IN:
        module = importlib.import_module(f"orbyt.shared.providers.{name}")
        assert get_adapter(name) is module.ADAPTER
        assert module.ADAPTER.name == name
    assert get_adapter("base") is None and get_adapter("nope") is None


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_each_provider_has_the_four_roles_or_inherits_them(name: str) -> None:
    adapter = get_adapter(name)
    package = f"orbyt.shared.providers.{name}"
    if name != "mock":  # mock inherits all four from the OpenAI dialect
        for role in ROLES:
            importlib.import_module(f"{package}.{role}")
    else:
        assert isinstance(adapter, OpenAIDialect)
    assert isinstance(adapter.new_stream_state({}, TARGET), StreamState)
