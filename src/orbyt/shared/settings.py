"""One settings object for API and workers: `ORBYT_*` environment variables and an optional
config file (`ORBYT_CONFIG=path.yaml|path.toml|path.json`, read by `shared/config_file.py`;
the environment wins over the file). Nested fields use `__`, e.g.
`ORBYT_PROVIDERS__ANTHROPIC__KEYS='["sk-ant-..."]'`, `ORBYT_PROVIDERS__MYVLLM__ADAPTER=openai`.
Every setting, commented: `orbyt.example.yaml` (a test keeps it complete).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from orbyt.shared.catalog import DeclaredModel
from orbyt.shared.config_file import ConfigFileSource


def _split_list(value: Any) -> Any:
    """A JSON list or a comma-separated string, as env vars carry them."""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            return json.loads(value)
        return [k.strip() for k in value.split(",") if k.strip()]
    return value


class DeploymentConfig(BaseModel):
    """One more place serving a provider's models: its own base URL and key pool."""

    name: str
    base_url: str
    keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    @field_validator("keys", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_list(value)


class ProviderConfig(BaseModel):
    """One upstream: which adapter speaks to it, where it is and the gateway's pool keys.
    `deployments`, if given, replace base_url/keys with several routes for each model.
    `models` declares what it serves (capabilities, context window, prices), e.g.
    `ORBYT_PROVIDERS__MYVLLM__MODELS='[{"id": "llama-3-8b", "capabilities": ["prefill"]}]'`."""

    adapter: str | None = None  # default: the provider's name; "openai" for compatible upstreams
    base_url: str | None = None
    keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # request fields beyond OpenAI's passed through to this (OpenAI-compatible) upstream,
    # e.g. ORBYT_PROVIDERS__MYVLLM__EXTRA_FIELDS=top_k,repetition_penalty
    extra_fields: Annotated[list[str], NoDecode] = Field(default_factory=list)

    deployments: list[DeploymentConfig] = Field(default_factory=list)
    # models served here, merged over the shipped catalog (`shared.catalog.catalog_for`)
    models: list[DeclaredModel] = Field(default_factory=list)

    @field_validator("keys", "extra_fields", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_list(value)


class MockConfig(BaseModel):
    ttft_ms: float = 0.0
    token_ms: float = 0.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORBYT_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["dev", "production", "test"] = "production"

    # redis: two roles (orbyt.shared.redis.roles), URLs as in orbyt.shared.redis.options
    # durable state (gateway keys, usage, route health, batches): run it with AOF
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("ORBYT_REDIS_URL", "REDIS_URL"),
    )
    # ephemeral traffic (jobs, reply channels, wake-ups, cancels, BYOK side-cars): no
    # persistence; unset = redis_url
    queue_redis_url: str | None = None
    redis_ping_interval: float = 1.0  # a quiet hot-path connection PINGs this often
    redis_dead_after: float = 3.0  # no reply owed for this long: the connection is dead

    gateway_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    console_session_ttl: float = Field(8 * 3600.0, gt=0)  # admin console login, seconds
    secret_key: SecretStr | None = None
    old_secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    byok_ttl: float = 30.0
    responses_ttl: float = Field(7 * 24 * 3600.0, gt=0)  # stored /v1/responses, seconds
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    catalog_path: Path | None = None
    mock: MockConfig = Field(default_factory=MockConfig)

    # queue and reply stream
    chat_queue: str = "orbyt:chat"
    batch_queue: str = "orbyt:batch"
    pickup_timeout: float = 5.0  # seconds for a worker to start a job before the API gives up
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0  # API: no frame for this long mid-request -> error
    reply_queue_frames: int = 4096  # per-request bound; a client this far behind is dropped
    # in-flight replies survive a Redis outage this long (0: end them at once); both sides
    reply_resume_s: float = Field(10.0, ge=0)
    # worker: reply frames kept per request for resuming (oldest dropped past this)
    reply_replay_bytes: int = Field(1 << 20, ge=0)
    worker_max_jobs: int = 2000
    worker_poll_delay: float = 0.25  # fallback poll; enqueue wakes workers at once
    # aiohttp relays streams at ~2x httpx's CPU efficiency here (bench/README.md); httpx
    # stays selectable and always serves the in-process mock provider
    publish_coalesce_ms: float = (
        2.0  # frames of a busy worker (and an API's unsubscribes) leave together, this far apart
    )
    upstream_client: Literal["httpx", "aiohttp"] = "aiohttp"
    worker_metrics_port: int = 9464  # Prometheus endpoint of each worker (0: off)
    worker_metrics_host: str = "127.0.0.1"  # loopback; "0.0.0.0" to let a scraper in

    # batch (DESIGN §7): file store, line pools, limits
    file_store: str = ".orbyt/files"  # a directory, file:///dir or s3://bucket/prefix
    batch_concurrency: int = 32  # lines in flight per worker process
    batch_global_concurrency: int = 256  # lines in flight across all workers (Redis)
    batch_lease: float = 30.0  # seconds a claimed line stays owned without renewal
    batch_window_scale: float = 1.0  # completion_window multiplier (tests shrink it)
    batch_max_file_bytes: int = 200 * 1024 * 1024
    batch_max_lines: int = 50_000

    # routing defaults (DESIGN §4)
    default_retry: int = 2
    default_timeout: float = 120.0
    connect_timeout: float = 5.0
    ttft_timeout: float = 10.0
    stall_timeout: float = 15.0
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    retry_after_cap: float = 10.0
    breaker_failures: int = 3  # consecutive retryable failures that open a route's breaker
    breaker_cooldown: float = 10.0  # seconds open before one probe is let through
    nonstream_timeout: float = 60.0  # per attempt, when another candidate exists

    usage_flush_interval: float = 1.0  # seconds between batched usage writes

    # request limits
    max_body_bytes: int = 8 * 1024 * 1024
    max_messages: int = 2048

    @field_validator("gateway_keys", "old_secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        return _split_list(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("ORBYT_CONFIG")
        if config:
            sources.append(ConfigFileSource(settings_cls, Path(config)))
        return tuple(sources)

    def secrets(self) -> list[str]:
        current = [self.secret_key.get_secret_value()] if self.secret_key else []
        return current + [k.get_secret_value() for k in self.old_secret_keys]

    def provider(self, name: str) -> ProviderConfig:
        return self.providers.get(name) or ProviderConfig()

    # API exposure
    # ORBYT_METRICS_KEY: when set, the API's /metrics and /openapi.json answer only requests
    # with `Authorization: Bearer <it>` (401 otherwise); unset, both are public.
    metrics_key: SecretStr | None = None


@cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # values come from the environment
