"""The console end to end in a real headless Chromium (Debian's `chromium`, driven by
Playwright): sign in, create a key and use it with the openai SDK, see the request in
usage, revoke the key and see the next request fail, watch a breaker open, cancel a batch
and download its results, sign out. Each page is saved as a screenshot at laptop and phone
width under tests/artifacts/console/ (git-ignored). Afterwards no console page, admin
answer, log line or Redis value holds a gateway, BYOK, pool or admin key.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.gateway import GATEWAY_KEY, ROOT, Gateway
from tests.integration.batch.support import client, line, submit, wait
from tests.integration.console.conftest import (
    ADMIN_KEY,
    FLAKY_KEY,
    FLAKY_KEY_2,
    POOL_KEY,
    sign_in,
)
from tests.integration.leakscan import Needles, redis_dump

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("CHROMIUM_BIN") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():  # pragma: no cover - CI installs it (scripts/ensure-chromium.sh)
    if os.environ.get("CI"):
        raise RuntimeError(
            f"the console browser tests need {CHROMIUM} (scripts/ensure-chromium.sh)"
        )
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

pytestmark = pytest.mark.integration
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
SIZES = {"laptop": {"width": 1366, "height": 860}, "phone": {"width": 390, "height": 844}}
BYOK = "sk-proj-console-byok-" + "Hq4vN8zT2mX6" * 3
MODEL = "openai/gpt-5-mini"
MSG = [{"role": "user", "content": "Say hi"}]


class Seen:
    """What the browser showed (every page but the one that shows a new key once)."""

    def __init__(self) -> None:
        self.pages: list[bytes] = []
        self.keys: list[str] = []
        self.requests: list[str] = []  # every URL the browser asked for


@pytest.fixture(scope="module")
def seen() -> Seen:
    return Seen()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, gw: Gateway, seen: Seen) -> Iterator[Any]:
    context = browser.new_context(
        viewport=SIZES["laptop"], base_url=gw.url(), accept_downloads=True
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    tab.on("request", lambda request: seen.requests.append(request.url))
    yield tab
    context.close()


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
    .filter((e) => e.labels.length === 0).map((e) => e.name)"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def shoot(tab: Any, name: str) -> None:
    """Screenshots at laptop and phone width; on each, every field has a label and the page
    is no wider than the screen (wide tables scroll inside their own box)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert tab.evaluate(UNLABELLED) == [], name
    for size, viewport in SIZES.items():
        tab.set_viewport_size(viewport)
        # the charts re-layout on the window's resize event, which comes a moment later
        with contextlib.suppress(playwright_api.TimeoutError):
            tab.wait_for_function(f"() => ({OVERFLOW})() <= 0", timeout=5000)
        assert tab.evaluate(OVERFLOW) <= 0, (name, size)
        tab.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
    tab.set_viewport_size(SIZES["laptop"])


def visit(tab: Any, seen: Seen, path: str) -> None:
    tab.goto(path)
    seen.pages.append(tab.content().encode())


def sdk(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=20)


def storage(tab: Any) -> dict[str, str]:
    """Everything in local and session storage (htmx keeps only the current path there)."""
    return tab.evaluate(  # type: ignore[no-any-return]
        "() => Object.assign({}, {...localStorage}, {...sessionStorage})"
    )


def test_sign_in_with_the_admin_key(page: Any, seen: Seen) -> None:
    page.goto("/console/keys")
    assert page.url.endswith("/console/login")
    shoot(page, "login")
    assert page.evaluate("() => document.activeElement.id") == "admin_key"  # autofocus
    page.get_by_label("Admin key").fill("not-the-admin-key")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Incorrect admin key."
    page.get_by_label("Admin key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/keys")
    assert page.get_by_role("heading", name="Gateway keys").is_visible()
    page.keyboard.press("Tab")  # keyboard users reach the skip link first
    assert page.evaluate("() => document.activeElement.className") == "skip"
    assert page.evaluate("() => document.cookie") == ""  # HttpOnly: not readable by scripts
    assert storage(page) == {"htmx-current-path-for-history": "/console/keys"}
    seen.pages.append(page.content().encode())


def test_create_use_and_revoke_a_key(page: Any, gw: Gateway, seen: Seen) -> None:
    visit(page, seen, "/console/keys")
    page.get_by_label("Name").fill("browser-made")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("heading", name="Key created").wait_for()
    key = page.get_by_label("Key for").input_value()
    assert key.startswith("sk-or-v1-") and len(key) == 73
    seen.keys.append(key)
    shoot(page, "key-created")
    assert key not in page.url and key not in str(storage(page))

    answer = sdk(gw, key).chat.completions.create(model=MODEL, messages=MSG)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    sdk(gw, key).chat.completions.create(
        model=MODEL,
        messages=MSG,  # type: ignore[arg-type]
        extra_body={"extra": {"byok": BYOK}},
    )

    deadline = time.monotonic() + 5
    while True:  # the usage page shows both requests within seconds
        visit(page, seen, "/console/usage?group_by=key")
        row = page.locator("#usage-table tbody tr", has_text="browser-made")
        if row.count() and row.locator("td").nth(0).inner_text() == "2":
            break
        assert time.monotonic() < deadline, "the requests never showed in usage"
        time.sleep(0.2)
    assert row.locator("td").nth(6).inner_text() == "1"  # one BYOK request, provider-billed
    assert page.locator("#chart-requests canvas").count() == 1  # uPlot drew the chart
    shoot(page, "usage")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("day,key_id,model,provider,requests") and key not in exported

    visit(page, seen, "/console/keys")
    listed = page.locator("tr", has_text="browser-made")
    assert "sk-or-v1-…" + key[-4:] in listed.inner_text()
    assert "never" not in listed.inner_text()  # last used is known
    shoot(page, "keys")
    listed.get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/console/keys")
    assert "revoked" in page.locator("tr", has_text="browser-made").inner_text()
    with pytest.raises(openai.AuthenticationError):
        sdk(gw, key).chat.completions.create(model=MODEL, messages=MSG)  # type: ignore[arg-type]


def test_edit_limits(page: Any, gw: Gateway, seen: Seen) -> None:
    created = httpx.post(
        gw.url() + "/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "limited"},
    ).json()
    seen.keys.append(created["key"])
    visit(page, seen, "/console/keys")
    row = page.locator("tr", has_text="limited")
    row.get_by_label("RPM").fill("1")
    row.get_by_role("button", name="Save").click()
    page.wait_for_url("**/console/keys")
    assert page.locator("tr", has_text="limited").get_by_label("RPM").input_value() == "1"
    c = sdk(gw, created["key"])
    c.chat.completions.create(model=MODEL, messages=MSG)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model=MODEL, messages=MSG)  # type: ignore[arg-type]


def test_a_failing_provider_opens_its_breaker(
    page: Any, gw: Gateway, flaky: Any, seen: Seen
) -> None:
    from tests.fakes import Error

    flaky.default = Error(503)
    c = sdk(gw, GATEWAY_KEY)
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(
                model="flaky/edge-1",
                messages=MSG,  # type: ignore[arg-type]
                extra_body={"extra": {"retry": 0}},
            )
    visit(page, seen, "/console/routes")
    state = page.locator('tr[data-route="flaky/edge-1@default"] .state')
    state.wait_for()
    deadline = time.monotonic() + 10  # the page refreshes itself (htmx, every 3 s)
    while state.inner_text() != "open":
        assert time.monotonic() < deadline, state.inner_text()
        time.sleep(0.2)
    assert page.locator("#live-workers").inner_text() == "1"
    assert page.locator('tr[data-pool="flaky@default"] td').first.inner_text() == "2"  # keys
    seen.pages.append(page.content().encode())
    shoot(page, "routes")


def test_cancel_a_batch_and_download_its_results(page: Any, gw: Gateway, seen: Seen) -> None:
    c = client(gw.base_url)
    batch = submit(c, [line(f"s-{i}", f"SLOW {i}") for i in range(300)])
    wait(c, batch.id, until=("in_progress",))
    visit(page, seen, "/console/batches")
    row = page.locator(f'tr[data-batch="{batch.id}"]')
    assert row.locator(".status").inner_text() == "in_progress"
    shoot(page, "batches")
    row.get_by_role("button", name="Cancel").click()
    page.wait_for_url("**/console/batches")
    done = wait(c, batch.id)
    assert done.status == "cancelled"
    visit(page, seen, "/console/batches")
    row = page.locator(f'tr[data-batch="{batch.id}"]')
    assert row.locator(".status").inner_text() == "cancelled"
    assert done.error_file_id, row.inner_html()
    with page.expect_download() as download:
        row.get_by_role("link", name="Errors").click()
    errors = Path(download.value.path()).read_bytes()
    assert b"batch_cancelled" in errors


def test_sign_out_ends_the_session(page: Any) -> None:
    page.goto("/console/keys")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
    page.goto("/console/usage")
    assert page.url.endswith("/console/login")


def test_the_console_works_offline(gw: Gateway, seen: Seen) -> None:
    """Every script, style and page came from the gateway itself: no CDN."""
    assert any(u.endswith("/console/static/vendor/htmx-2.0.11.min.js") for u in seen.requests)
    assert any(u.endswith("/console/static/vendor/uPlot-1.6.32.iife.min.js") for u in seen.requests)
    assert [u for u in seen.requests if not u.startswith(gw.url() + "/")] == []


def test_no_key_in_any_page_log_or_redis_value(gw: Gateway, seen: Seen) -> None:
    needles = Needles()
    needles.add("admin key", ADMIN_KEY)
    needles.add("byok key", BYOK)
    needles.add("pool key", POOL_KEY)
    needles.add("flaky pool key", FLAKY_KEY)
    needles.add("flaky pool key 2", FLAKY_KEY_2)
    for i, key in enumerate(seen.keys):
        needles.add(f"gateway key {i}", key)
    assert seen.keys and len(seen.pages) >= 6
    session, _ = sign_in(gw)
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    pages = ("keys", "usage", "routes", "batches", "usage.csv")
    try:
        fetched = [session.get(f"/console/{p}").content for p in pages]
    finally:
        session.close()
    fetched += [
        httpx.get(gw.url() + p, headers=admin).content
        for p in (
            "/admin/keys",
            "/admin/usage/summary?group_by=key",
            "/admin/usage.csv",
            "/admin/routes",
            "/admin/batches",
        )
    ]
    hits = []
    for i, html in enumerate(seen.pages + fetched):
        hits += needles.search(html, f"page {i}")
    for log in sorted(gw.logdir.glob("*.log")):
        hits += needles.search(log.read_bytes(), log.name)
    port = int(gw.redis_url.rsplit(":", 1)[1].split("/")[0])
    hits += needles.search(redis_dump(port), "redis")
    assert not hits, [str(h) for h in hits]
