"""The README's BYOK example: its placeholder keys pass the key-shape check (so pasting
your own keys is the only change) and say they must be replaced; its note on `cheap` is
what the strategy does with the shipped prices."""

from __future__ import annotations

import re
from pathlib import Path

from orbyt.api.auth import key_shape_problem
from orbyt.shared.catalog import default_catalog
from orbyt.shared.routing import order_by_strategy

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_byok_placeholders_pass_the_shape_check_and_are_marked() -> None:
    keys = dict(re.findall(r'"(openai|anthropic)": "(sk-[^"]+)"', README))
    assert set(keys) == {"openai", "anthropic"}
    for provider, key in keys.items():
        assert key_shape_problem(provider, key) is None, provider
        assert "REPLACE" in key
    assert "placeholders: replace both with your own keys" in README


def test_cheap_tries_the_cheaper_fallback_before_the_primary() -> None:
    catalog = default_catalog()
    plan = ["openai/gpt-5-mini", "anthropic/claude-3-haiku"]

    def price(model: str) -> float | None:
        info = catalog.get(model)
        return info.blended_price if info else None

    ordered = order_by_strategy(
        plan, "cheap", price=price, provider=lambda m: m, observed=lambda m: None
    )
    assert ordered == ["anthropic/claude-3-haiku", "openai/gpt-5-mini"]
    assert "would send the request to `anthropic/claude-3-haiku`\nfirst" in README
