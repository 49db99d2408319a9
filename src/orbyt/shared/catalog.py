"""The model catalog, shipped as data (`catalog.json`) and optionally replaced by a file of
the operator's (`ORBYT_CATALOG_PATH`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

DEFAULT_PATH = Path(__file__).with_name("catalog.json")
CAPABILITIES = frozenset({"tools", "vision", "json", "prefill", "reasoning"})


class ModelInfo(BaseModel):
    id: str
    upstream: str = ""
    input_price: float | None = None  # USD per 1M input tokens
    output_price: float | None = None  # USD per 1M output tokens
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: frozenset[str] = Field(default_factory=frozenset)

    @model_validator(mode="after")
    def _check(self) -> ModelInfo:
        if "/" not in self.id:
            raise ValueError(f"model id {self.id!r} must be provider/model")
        unknown = self.capabilities - CAPABILITIES
        if unknown:
            raise ValueError(f"{self.id}: unknown capabilities {sorted(unknown)}")
        if not self.upstream:
            self.upstream = self.id.split("/", 1)[1]
        return self

    @property
    def provider(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def blended_price(self) -> float | None:
        if self.input_price is None or self.output_price is None:
            return None
        return self.input_price + self.output_price


class Catalog(BaseModel):
    models: list[ModelInfo]

    def get(self, model_id: str) -> ModelInfo | None:
        return self._index().get(model_id)

    def _index(self) -> dict[str, ModelInfo]:
        index: dict[str, ModelInfo] | None = getattr(self, "_by_id", None)
        if index is None:
            index = {m.id: m for m in self.models}
            object.__setattr__(self, "_by_id", index)
        return index


def load_catalog(path: Path | None = None) -> Catalog:
    raw = (path or DEFAULT_PATH).read_bytes()
    catalog = Catalog.model_validate_json(raw)
    ids = [m.id for m in catalog.models]
    if len(ids) != len(set(ids)):
        raise ValueError("catalog has duplicate model ids")
    return catalog


@cache
def default_catalog() -> Catalog:
    from orbyt.shared.settings import get_settings

    return load_catalog(get_settings().catalog_path)
