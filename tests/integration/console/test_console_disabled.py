"""Without ORBYT_ADMIN_KEY the console says so on its sign-in page, and signing in fails
with 403 (the admin API's answer). In process: the app with its lifespan on a real Redis."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from orbyt.api.main import create_app
from orbyt.shared.settings import Settings
from tests.gateway import RedisServer

pytestmark = pytest.mark.integration
DISABLED = "The admin API is disabled (ORBYT_ADMIN_KEY is not set)."


def test_console_without_an_admin_key(redis_server: RedisServer) -> None:
    app = create_app(Settings(redis_url=redis_server.new_db_url(), admin_key=None))
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as c:
        page = c.get("/console/login")
        assert page.status_code == 200 and DISABLED in page.text
        found = re.search(r'name="login_token" value="([^"]+)"', page.text)
        assert found is not None
        resp = c.post("/console/login", data={"login_token": found.group(1), "admin_key": "x"})
        assert resp.status_code == 403 and DISABLED in resp.text
        assert c.get("/console/keys").headers["location"] == "/console/login"
