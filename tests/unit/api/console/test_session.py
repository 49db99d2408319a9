"""api.console.session and the admin-key check: constant-time comparisons that fail closed."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from orbyt.api.console.session import new_token, token_matches
from orbyt.api.routes.admin import admin_key_matches
from orbyt.shared.errors import PermissionDenied
from orbyt.shared.settings import Settings


def test_csrf_tokens_match_only_themselves() -> None:
    token = new_token()
    assert len(token) >= 40 and token != new_token()
    assert token_matches(token, token)
    assert not token_matches(token, token[:-1])
    assert not token_matches(token, None)
    assert not token_matches(token, "")
    assert not token_matches("", "")  # a session without a token accepts nothing


def test_admin_key_check() -> None:
    settings = Settings(admin_key=SecretStr("the-admin-key-0123456789"))
    assert admin_key_matches(settings, "the-admin-key-0123456789")
    assert not admin_key_matches(settings, "the-admin-key-012345678")
    assert not admin_key_matches(settings, "")
    for unset in (None, SecretStr("")):
        with pytest.raises(PermissionDenied):
            admin_key_matches(Settings(admin_key=unset), "anything")
