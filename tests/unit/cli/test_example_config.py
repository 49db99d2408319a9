"""`orbyt.example.yaml` covers every setting (so it cannot drift from `Settings`) and loads."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from orbyt.shared.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[3] / "orbyt.example.yaml"


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model(arg)
        if found is not None:
            return found
    return None


def _entries(annotation: Any, value: Any) -> list[Any]:
    """The example's instances of a model field: the value, a dict's values, a list's items."""
    origin = typing.get_origin(annotation)
    if origin is dict:
        return list(value.values()) if isinstance(value, dict) else []
    if origin is list:
        return list(value) if isinstance(value, list) else []
    return [value]


def missing(model: type[BaseModel], examples: list[Any], where: str) -> list[str]:
    """Fields of `model` that no example instance shows, recursively."""
    out = []
    for name, field in model.model_fields.items():
        shown = [e[name] for e in examples if isinstance(e, dict) and name in e]
        if not shown:
            out.append(where + name)
            continue
        inner = _model(field.annotation)
        if inner is not None:
            nested = [x for v in shown for x in _entries(field.annotation, v)]
            out += missing(inner, nested, f"{where}{name}.")
    return out


def test_the_example_shows_every_setting() -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    assert missing(Settings, [example], "") == []


def test_the_example_has_no_key_that_no_setting_reads() -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    assert set(example) - set(Settings.model_fields) == set()


def test_the_example_loads_as_a_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("ORBYT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("ORBYT_CONFIG", str(EXAMPLE))
    settings = Settings()  # type: ignore[call-arg]
    defaults = Settings.model_construct()
    assert settings.provider("myvllm").adapter == "openai"
    assert settings.provider("anthropic").deployments[0].name == "eu"
    for name in ("redis_url", "pickup_timeout", "worker_max_jobs", "max_body_bytes", "env"):
        assert getattr(settings, name) == getattr(defaults, name)


def test_a_missing_setting_is_found() -> None:
    """The checker itself: a nested field absent from every provider is reported."""
    example = yaml.safe_load(EXAMPLE.read_text())
    for provider in example["providers"].values():
        provider.pop("adapter", None)
    del example["mock"]["token_ms"]
    assert sorted(missing(Settings, [example], "")) == ["mock.token_ms", "providers.adapter"]
