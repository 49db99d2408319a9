"""The config file named by `ORBYT_CONFIG` (YAML, TOML or JSON, by extension), and the
checks that make configuration mistakes visible at startup.

- `ConfigFileSource`: the file as a pydantic-settings source (environment variables win
  over it). A missing, unreadable or malformed file, or one whose top level is not a
  mapping, raises `ConfigFileError` naming the path and the parser's reason.
- `config_warnings()`: one line per `ORBYT_*` environment variable and per config-file key
  that no setting reads (a typo is otherwise silently ignored), with a "did you mean".
- `validation_summary()`: a pydantic `ValidationError` as one line, without input values
  (they may be keys).

See `orbyt.example.yaml` at the repository root for every setting.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

PREFIX = "ORBYT_"
NESTED = "__"

# ORBYT_* variables read outside `Settings` (CLI options, the dev runner, tests, bench).
OUTSIDE_SETTINGS = frozenset(
    {
        "ORBYT_CONFIG",
        "ORBYT_BASE_URL",  # `orbyt batch`: the gateway to talk to
        "ORBYT_HOST",
        "ORBYT_PORT",
        "ORBYT_LOG_FORMAT",
        "ORBYT_DEV_KEY",
        "ORBYT_DEV_REDIS",
        "ORBYT_REDIS_SERVER",
        "ORBYT_COVERAGE_FLOOR",
        "ORBYT_BENCH_SRC",
        "ORBYT_FUZZ_EXAMPLES",
        "ORBYT_FUZZ_SEEDED",
    }
)


class ConfigFileError(Exception):
    """A config file that cannot be used; the message names the path and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"config file {path}: {reason}")
        self.path = path
        self.reason = reason


def _yaml_reason(exc: Exception) -> str:
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML: {exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return f"invalid YAML: {exc}".replace("\n", " ")


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml  # here: only processes with a YAML config file pay for the import

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigFileError(path, _yaml_reason(exc)) from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigFileError(path, f"invalid TOML: {exc}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigFileError(path, f"invalid JSON: {exc}") from None
    raise ConfigFileError(path, "unknown format (use a .yaml, .yml, .toml or .json file)")


def read_config(path: Path) -> dict[str, Any]:
    """The file's settings as a dict (an empty YAML file is no settings)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(path, f"cannot read it ({exc})") from None
    data = _parse(path, text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(path, f"the top level must be a mapping, not {type(data).__name__}")
    return data


class ConfigFileSource(PydanticBaseSettingsSource):
    """`ORBYT_CONFIG`'s file as a settings source (lower priority than the environment)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        return read_config(self.path)


# ---------------------------------------------------------------------- unknown names
def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or as the values of a dict or items of a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation)[-1:]:
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _env_names(settings_cls: type[BaseSettings]) -> dict[str, Any]:
    """Top-level environment names (upper case) → the field's annotation."""
    names: dict[str, Any] = {}
    for name, field in settings_cls.model_fields.items():
        names[PREFIX + name.upper()] = field.annotation
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            if isinstance(choice, str):
                names[choice.upper()] = field.annotation
    return names


def _fields(annotation: Any) -> dict[str, Any] | None:
    """Upper-cased field names → annotations of the model a field holds; None if none."""
    model = _model_of(annotation)
    if model is None:
        return None
    return {name.upper(): field.annotation for name, field in model.model_fields.items()}


def _unknown_part(
    names: Mapping[str, Any], parts: list[str], prefix: str = ""
) -> tuple[str, list[str]] | None:
    """None if `A__B__C` names a setting, else (the known prefix, the valid next names)."""
    head, rest = parts[0], parts[1:]
    if head not in names:
        return prefix, list(names)
    if not rest:
        return None
    annotation = names[head]
    prefix += head + NESTED
    if _is_mapping(annotation):  # providers: any name, then that value's fields
        prefix += rest[0] + NESTED
        annotation, rest = typing.get_args(annotation)[-1], rest[1:]
        if not rest:
            return None
    fields = _fields(annotation)
    if fields is None:  # a plain value has nothing below it
        return prefix, []
    return _unknown_part(fields, rest, prefix)


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_env_vars(environ: Mapping[str, str], settings_cls: type[BaseSettings]) -> list[str]:
    """Warning lines for `ORBYT_*` variables that neither `Settings` nor Orbyt's tools read."""
    names = _env_names(settings_cls)
    out = []
    for var in sorted(environ):
        upper = var.upper()
        if not upper.startswith(PREFIX) or upper in OUTSIDE_SETTINGS:
            continue
        unknown = _unknown_part(names, upper.split(NESTED))
        if unknown is None:
            continue
        prefix, siblings = unknown
        candidates = [prefix + s for s in siblings] + ([] if prefix else [*OUTSIDE_SETTINGS])
        out.append(f"unknown setting {var} is ignored{_suggest(upper, candidates)}")
    return out


def unknown_file_keys(data: Mapping[str, Any], settings_cls: type[BaseSettings]) -> list[str]:
    """Warning lines for top-level config-file keys that no setting reads."""
    fields = settings_cls.model_fields
    return [
        f"unknown key {key!r} in the config file is ignored{_suggest(key, fields)}"
        for key in data
        if key not in fields
    ]


def config_warnings(environ: Mapping[str, str], settings_cls: type[BaseSettings]) -> list[str]:
    """Every unknown-name warning: environment variables, then config-file keys."""
    out = unknown_env_vars(environ, settings_cls)
    path = environ.get("ORBYT_CONFIG")
    if path:
        out += unknown_file_keys(read_config(Path(path)), settings_cls)
    return out


def validation_summary(exc: ValidationError) -> str:
    """One line: which settings are invalid and why (never the values)."""
    errors = exc.errors(include_input=False, include_url=False)
    shown = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in errors[:3]
    )
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"invalid settings: {shown}{more}"
