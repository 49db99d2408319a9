"""Console security over real HTTP: pages need a session, the admin key is checked in
constant time, state changes need the CSRF token, the session cookie's flags, expiry and
server-side sign-out, the security headers; and the admin API the console shows."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time

import httpx
import pytest
import redis

from orbyt.api.auth import hash_key
from orbyt.api.console.pages import PATHS
from tests.fakes import Error, FakeOpenAI
from tests.gateway import GATEWAY_KEY, ROOT, Gateway
from tests.integration.console.conftest import (
    ADMIN_KEY,
    FLAKY_KEY,
    FLAKY_KEY_2,
    SESSION_TTL,
    login_token,
    sign_in,
)

pytestmark = pytest.mark.integration
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def anonymous(gw: Gateway) -> httpx.Client:
    return httpx.Client(base_url=gw.url(), follow_redirects=False, timeout=20)


def concrete(path: str) -> str:
    return (
        path.replace("{key_id}", "key_0123456789abcdef")
        .replace("{batch_id}", "batch_0123456789abcdef01234567")
        .replace("{which}", "output")
    )


def test_every_console_page_without_a_session_redirects_to_sign_in(gw: Gateway) -> None:
    assert len(PATHS) >= 12
    with anonymous(gw) as c:
        for cookie in (None, "made-up-session-id", "x" * 500):
            if cookie is not None:
                c.cookies.set("orbyt_console", cookie, path="/console")
            for path, method in PATHS:
                resp = c.request(method, concrete(path), data={"csrf_token": "x"})
                assert resp.status_code == 303, (path, resp.status_code)
                assert resp.headers["location"] == "/console/login"
        refresh = c.get("/console/routes", headers={"hx-request": "true"})  # htmx polling
        assert refresh.status_code == 204 and refresh.headers["hx-redirect"] == "/console/login"


def test_wrong_admin_key_is_refused_without_a_session(gw: Gateway) -> None:
    with anonymous(gw) as c:
        token = login_token(c.get("/console/login").text)
        resp = c.post("/console/login", data={"login_token": token, "admin_key": "nope"})
        assert resp.status_code == 401 and "Incorrect admin key." in resp.text
        assert "orbyt_console=" not in resp.headers.get("set-cookie", "").replace(
            "orbyt_console_login=", ""
        )
        assert c.get("/console/keys").status_code == 303


def _refused_ms(c: httpx.Client, key: str) -> float:
    token = login_token(c.get("/console/login").text)
    start = time.perf_counter()
    resp = c.post("/console/login", data={"login_token": token, "admin_key": key})
    took = (time.perf_counter() - start) * 1000
    assert resp.status_code == 401
    return took


def test_a_wrong_key_takes_as_long_however_close_it_is(gw: Gateway) -> None:
    """compare_digest takes as long wherever two keys differ: a key that is the admin key
    but for its last character is refused as fast as an unrelated one of the same length.
    (A shorter key is told apart by length only, which hmac.compare_digest allows.)
    Tries interleave, so load on the machine weighs on every kind alike."""
    near = ADMIN_KEY[:-1] + ("x" if ADMIN_KEY[-1] != "x" else "y")
    kinds = {"near": near, "far": "Z" * len(ADMIN_KEY), "first": "Z" + ADMIN_KEY[1:]}
    took: dict[str, list[float]] = {name: [] for name in kinds}
    with anonymous(gw) as c:
        for key in kinds.values():  # warm up
            _refused_ms(c, key)
        for _ in range(30):
            for name, key in kinds.items():
                took[name].append(_refused_ms(c, key))
    medians = {name: statistics.median(values) for name, values in took.items()}
    spread = max(medians.values()) - min(medians.values())
    assert spread < max(5.0, 0.5 * min(medians.values())), medians


def test_state_changes_need_the_sessions_csrf_token(gw: Gateway) -> None:
    c, csrf = sign_in(gw)
    other, other_csrf = sign_in(gw)
    try:
        before = httpx.get(gw.url() + "/admin/keys", headers=ADMIN).json()["data"]
        for form in ({}, {"csrf_token": ""}, {"csrf_token": "wrong"}, {"csrf_token": other_csrf}):
            resp = c.post("/console/keys", data={"name": "csrf-probe", **form})
            assert resp.status_code == 403 and "CSRF" in resp.text
        resp = c.post("/console/logout", data={"csrf_token": other_csrf})
        assert resp.status_code == 403
        assert httpx.get(gw.url() + "/admin/keys", headers=ADMIN).json()["data"] == before
        # the token in a header (htmx requests) works as well as the form field
        resp = c.post("/console/keys", data={"name": "csrf-header"}, headers={"x-csrf-token": csrf})
        assert resp.status_code == 200 and "Key created" in resp.text
        # the sign-in form carries its own token (double submit: cookie and field)
        with anonymous(gw) as fresh:
            resp = fresh.post("/console/login", data={"admin_key": ADMIN_KEY})
            assert resp.status_code == 403 and "orbyt_console=" not in str(resp.headers)
    finally:
        c.close()
        other.close()


def _session_cookie(resp: httpx.Response) -> str:
    cookies = [v for v in resp.headers.get_list("set-cookie") if v.startswith("orbyt_console=")]
    assert len(cookies) == 1, cookies
    return cookies[0]


@pytest.mark.parametrize("https", [False, True])
def test_session_cookie_flags(gw: Gateway, https: bool) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback (its default forwarded_allow_ips)
    headers = {"x-forwarded-proto": "https"} if https else {}
    with anonymous(gw) as c:
        form = c.get("/console/login", headers=headers)
        login_cookie = form.headers["set-cookie"]
        assert ("Secure" in login_cookie) is https and "HttpOnly" in login_cookie
        c.cookies.clear()  # httpx keeps Secure cookies for https: send it by hand
        headers["cookie"] = login_cookie.split(";")[0]
        token = login_token(form.text)
        resp = c.post(
            "/console/login", data={"login_token": token, "admin_key": ADMIN_KEY}, headers=headers
        )
    assert resp.status_code == 303
    cookie = _session_cookie(resp)
    flags = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")[1:]}
    assert "httponly" in flags and flags["samesite"].strip().lower() == "samesite=strict"
    assert flags["path"].strip() == "Path=/console"
    assert flags["max-age"].strip() == f"Max-Age={SESSION_TTL}"
    assert ("secure" in flags) is https
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(session_id) >= 40 and ADMIN_KEY not in cookie


def test_session_lives_in_redis_with_a_ttl_and_expires(gw: Gateway) -> None:
    c, _ = sign_in(gw)
    r = redis.Redis.from_url(gw.redis_url)
    try:
        session_id = c.cookies["orbyt_console"]
        names = list(r.scan_iter("orbyt:console:session:*"))
        assert names and all(session_id.encode() not in n for n in names)  # stored hashed
        ttls = [int(r.ttl(n)) for n in names]  # type: ignore[arg-type]
        assert all(0 < t <= SESSION_TTL for t in ttls), ttls
        for name in names:
            r.pexpire(name, 1)
        time.sleep(0.05)
        assert c.get("/console/keys").headers["location"] == "/console/login"
    finally:
        r.close()
        c.close()


def test_sign_out_ends_the_session_on_the_server(gw: Gateway) -> None:
    c, csrf = sign_in(gw)
    stolen = c.cookies["orbyt_console"]
    try:
        resp = c.post("/console/logout", data={"csrf_token": csrf})
        assert resp.status_code == 303 and resp.headers["location"] == "/console/login"
        assert 'orbyt_console=""' in _session_cookie(resp)
        with anonymous(gw) as replay:  # the old cookie, replayed, is worth nothing
            replay.cookies.set("orbyt_console", stolen, path="/console")
            assert replay.get("/console/keys").headers["location"] == "/console/login"
    finally:
        c.close()


def test_pages_send_security_headers_and_no_inline_script(gw: Gateway) -> None:
    c, _ = sign_in(gw)
    try:
        for path in ("/console/keys", "/console/usage", "/console/routes", "/console/batches"):
            resp = c.get(path)
            assert resp.status_code == 200
            csp = resp.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert resp.headers["x-frame-options"] == "DENY"
            assert resp.headers["cache-control"] == "no-store"
            scripts = re.findall(r"<script([^>]*)>", resp.text)
            assert all("src=" in s or 'type="application/json"' in s for s in scripts), scripts
            assert not re.search(r"<[^>]+\son[a-z]+=", resp.text)  # no inline handlers
        for asset in ("console.js", "console.css", "vendor/htmx-2.0.11.min.js"):
            assert c.get(f"/console/static/{asset}").status_code == 200
    finally:
        c.close()


def test_admin_api_behind_the_admin_key(gw: Gateway) -> None:
    for path in (
        "/admin/keys",
        "/admin/usage/summary",
        "/admin/usage.csv",
        "/admin/routes",
        "/admin/batches",
    ):
        assert httpx.get(gw.url() + path).status_code == 401
        assert httpx.get(gw.url() + path, headers={"authorization": "Bearer x"}).status_code == 401
        assert httpx.get(gw.url() + path, headers=ADMIN).status_code == 200


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("from=2026-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2026-11-20&to=2026-11-10", "from"),
        ("from=2026-01-01&to=2026-11-10", "from"),
        ("group_by=colour", "group_by"),
    ],
)
def test_usage_summary_rejects_bad_queries(gw: Gateway, query: str, param: str) -> None:
    resp = httpx.get(f"{gw.url()}/admin/usage/summary?{query}", headers=ADMIN)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_key_limits_change_through_the_admin_api(gw: Gateway) -> None:
    created = httpx.post(gw.url() + "/admin/keys", headers=ADMIN, json={"name": "patch-me"}).json()
    url = f"{gw.url()}/admin/keys/{created['id']}"
    changed = httpx.patch(url, headers=ADMIN, json={"rpm": 7, "pool": False}).json()
    assert (changed["rpm"], changed["concurrency"], changed["pool"]) == (7, 0, False)
    assert httpx.patch(url, headers=ADMIN, json={"rpm": -1}).status_code == 400
    assert httpx.patch(url, headers=ADMIN, json={"name": "x"}).status_code == 400
    missing = httpx.patch(gw.url() + "/admin/keys/key_00000000000000ff", headers=ADMIN, json={})
    assert missing.status_code == 404
    assert httpx.get(gw.url() + "/admin/batches?limit=0", headers=ADMIN).status_code == 400


def test_usage_summary_and_csv_count_requests(gw: Gateway) -> None:
    body = {"model": "openai/gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
    auth = {"authorization": f"Bearer {GATEWAY_KEY}"}
    assert httpx.post(gw.base_url + "/chat/completions", headers=auth, json=body).status_code == 200
    deadline = time.monotonic() + 5
    while True:
        summary = httpx.get(gw.url() + "/admin/usage/summary?group_by=model", headers=ADMIN).json()
        rows = {g["group"]: g for g in summary["data"]}
        if rows.get("openai/gpt-5-mini", {}).get("requests"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    row = rows["openai/gpt-5-mini"]
    assert row["latency_p50_ms"] is not None and row["latency_p95_ms"] >= row["latency_p50_ms"]
    assert len(summary["days"]) == 7
    csv = httpx.get(gw.url() + "/admin/usage.csv", headers=ADMIN)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("day,key_id,model,provider,requests")
    assert ",openai/gpt-5-mini,openai," in csv.text


def test_admin_api_is_in_the_openapi_schema(gw: Gateway) -> None:
    paths = httpx.get(gw.url() + "/openapi.json").json()["paths"]
    for path in (
        "/admin/keys/{key_id}",
        "/admin/usage/summary",
        "/admin/usage.csv",
        "/admin/routes",
        "/admin/batches",
        "/admin/batches/{batch_id}/cancel",
    ):
        assert path in paths, path
    assert "patch" in paths["/admin/keys/{key_id}"]
    assert not [p for p in paths if p.startswith("/console")]


def test_routes_count_cooled_pool_keys_and_never_show_one(gw: Gateway, flaky: FakeOpenAI) -> None:
    flaky.default = Error(429, retry_after=30)
    auth = {"authorization": f"Bearer {GATEWAY_KEY}"}
    body = {
        "model": "flaky/cool-1",
        "messages": [{"role": "user", "content": "hi"}],
        "extra": {"retry": 0},
    }
    assert httpx.post(gw.base_url + "/chat/completions", headers=auth, json=body).status_code == 429
    r = redis.Redis.from_url(gw.redis_url)
    try:
        deadline = time.monotonic() + 3  # the worker cools the key as the attempt ends
        while True:
            resp = httpx.get(gw.url() + "/admin/routes", headers=ADMIN)
            pools = {p["pool"]: p for p in resp.json()["pools"]}
            if pools["flaky@default"]["cooled"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert pools["flaky@default"] == {
            "pool": "flaky@default",
            "keys": 2,
            "cooled": 2,
            "disabled": 0,
        }
        route = next(x for x in resp.json()["routes"] if x["route"] == "flaky/cool-1@default")
        assert route["cooled_pool_keys"] == 2 and route["provider"] == "flaky"
        for key in (FLAKY_KEY, FLAKY_KEY_2):
            assert key[8:30] not in resp.text and hash_key(key)[:12] not in resp.text
    finally:
        for name in r.scan_iter("orbyt:poolkey:flaky@*"):
            r.delete(name)
        r.close()


def test_cli_changes_limits_like_the_admin_api(gw: Gateway) -> None:
    created = httpx.post(gw.url() + "/admin/keys", headers=ADMIN, json={"name": "cli-lim"}).json()
    env = {**os.environ, "ORBYT_REDIS_URL": gw.redis_url, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "orbyt", "keys", "limits", created["id"], "--rpm", "9"]
    out = subprocess.run([*args, "--no-pool"], env=env, capture_output=True, check=True, timeout=30)
    shown = json.loads(out.stdout)
    assert (shown["rpm"], shown["concurrency"], shown["pool"]) == (9, 0, False)
    listed = httpx.get(gw.url() + "/admin/keys", headers=ADMIN).json()["data"]
    assert next(k for k in listed if k["id"] == created["id"])["rpm"] == 9
    missing = subprocess.run(
        [*args[:5], "key_00000000000000ff", "--rpm", "1"], env=env, capture_output=True, timeout=30
    )
    assert missing.returncode == 1 and b"no key with id" in missing.stdout


def test_console_errors_are_pages_with_the_admin_apis_status(gw: Gateway) -> None:
    c, csrf = sign_in(gw)
    try:
        missing = c.post("/console/keys/key_00000000000000ff/revoke", data={"csrf_token": csrf})
        assert missing.status_code == 404 and "No key with id" in missing.text
        bad = c.get("/console/usage?from=2026-02-30")
        assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
        assert bad.headers["content-type"].startswith("text/html")
        invalid = c.post("/console/keys", data={"csrf_token": csrf, "name": "x", "rpm": "-3"})
        assert invalid.status_code == 400 and "rpm" in invalid.text
        unknown_file = c.get("/console/batches/batch_0123456789abcdef01234567/output")
        assert unknown_file.status_code == 404
    finally:
        c.close()
