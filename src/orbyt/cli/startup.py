"""What every command checks before it runs: the settings load (config file included) or
the command fails with one line; unknown `ORBYT_*` names are warned about; production
needs a strong `ORBYT_SECRET_KEY`."""

from __future__ import annotations

import logging
import os

from pydantic import ValidationError

from orbyt.cli.errors import CliError
from orbyt.shared.config_file import ConfigFileError, config_warnings, validation_summary
from orbyt.shared.secret import weak_secret_reason
from orbyt.shared.settings import Settings, get_settings

log = logging.getLogger("orbyt.config")


def load_settings(warn: bool = False) -> Settings:
    """The process's settings; `CliError` (path and reason, or which setting) if unusable."""
    try:
        settings = get_settings()
        warnings = config_warnings(os.environ, Settings) if warn else []
    except ConfigFileError as exc:
        raise CliError(str(exc)) from None
    except ValidationError as exc:
        raise CliError(validation_summary(exc)) from None
    for warning in warnings:
        log.warning("%s", warning)
    return settings


def check_server_settings(warn: bool) -> Settings:
    """For `orbyt api` / `orbyt worker`: loadable settings and, in production, a secret."""
    settings = load_settings(warn)
    if settings.env == "production":
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        problem = weak_secret_reason(secret)
        if problem:
            raise CliError(
                f"{problem}. Set ORBYT_SECRET_KEY to a long random value "
                "(the same on every API and worker), or run `orbyt dev`."
            )
    return settings
