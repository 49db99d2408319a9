"""The model catalog: shipped as data (`catalog.json`, or a file of the operator's named by
`ORBYT_CATALOG_PATH`), with the models each provider declares in configuration merged over
it (`ORBYT_PROVIDERS__<NAME>__MODELS`, see `catalog_for`).

What a model's entry turns on: `context_window` (context-length failover picks a larger
one), `max_output_tokens` (the default for providers that require one), prices (cost in
usage records, the `cheap` strategy) and capabilities: `prefill` (a stream cut after
content continues on this model), `tools`, `vision`, `json`, `reasoning` (informational,
listed by `GET /v1/models`), `embeddings` (an embedding model: served on `/v1/embeddings`
only, with `dimensions` its native vector size) and `dimensions` (an embedding model that
takes the request's `dimensions`). A model missing from the catalog still routes, but with none
of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from orbyt.shared.settings import ProviderConfig, Settings

DEFAULT_PATH = Path(__file__).with_name("catalog.json")
CAPABILITIES = frozenset(
    {"tools", "vision", "json", "prefill", "reasoning", "embeddings", "dimensions"}
)


class ModelFields(BaseModel):
    """What the catalog knows about a model besides its id."""

    upstream: str = ""  # the id the upstream expects; default: the part after `provider/`
    input_price: float | None = Field(None, ge=0)  # USD per 1M input tokens
    output_price: float | None = Field(None, ge=0)  # USD per 1M output tokens
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    capabilities: frozenset[str] = Field(default_factory=frozenset)
    dimensions: int | None = Field(None, gt=0)  # embedding models: native vector size

    @model_validator(mode="after")
    def _known_capabilities(self) -> ModelFields:
        unknown = self.capabilities - CAPABILITIES
        if unknown:
            raise ValueError(
                f"unknown capabilities {sorted(unknown)} (known: {', '.join(sorted(CAPABILITIES))})"
            )
        return self


class ModelInfo(ModelFields):
    id: str

    @model_validator(mode="after")
    def _check(self) -> ModelInfo:
        if "/" not in self.id:
            raise ValueError(f"model id {self.id!r} must be provider/model")
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


class DeclaredModel(ModelFields):
    """A model declared under a provider in configuration. `id` is the name after
    `provider/` (it may itself contain `/`, as Hugging Face names served by vLLM do)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    id: str = Field(min_length=1)

    def info(self, provider: str) -> ModelInfo:
        fields = self.model_dump(exclude={"id"})
        return ModelInfo(id=f"{provider}/{self.id}", **fields)


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


def merge_declared(catalog: Catalog, providers: Mapping[str, ProviderConfig]) -> Catalog:
    """`catalog` with every provider's declared models merged over it: a declared model
    replaces the entry with the same id in place, a new one is appended."""
    declared: dict[str, ModelInfo] = {}
    for name, cfg in providers.items():
        for model in cfg.models:
            info = model.info(name)
            if info.id in declared:
                raise ValueError(f"model {info.id!r} is declared twice")
            declared[info.id] = info
    if not declared:
        return catalog
    merged = [declared.pop(m.id, m) for m in catalog.models]
    return Catalog(models=[*merged, *declared.values()])


def catalog_for(settings: Settings) -> Catalog:
    """The catalog API and workers use: the shipped one (or `ORBYT_CATALOG_PATH`) with the
    models declared under `ORBYT_PROVIDERS__<NAME>__MODELS` merged over it."""
    return merge_declared(load_catalog(settings.catalog_path), settings.providers)


@cache
def default_catalog() -> Catalog:
    from orbyt.shared.settings import get_settings

    return catalog_for(get_settings())
