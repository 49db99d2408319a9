"""The console's pages. Every page but the login form needs a session (else a redirect to
/console/login); every POST needs the session's CSRF token (else 403). Pages show what
`api.console.queries` / `api.routes.admin` compute, the same values the admin API answers.
A created key is shown once, on the page that answers its creation (never stored, never
in a URL); no other page holds a key.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from orbyt.api.console import queries, reports
from orbyt.api.console.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    Session,
    Sessions,
    clear_session_cookie,
    new_token,
    set_login_cookie,
    set_session_cookie,
    token_matches,
)
from orbyt.api.routes import admin
from orbyt.api.state import AppState
from orbyt.shared.errors import OrbytError

router = APIRouter(prefix="/console", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_env.filters["when"] = lambda ts: (
    time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "never"
)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _headers(response: Response) -> Response:
    response.headers["content-security-policy"] = CSP
    response.headers["cross-origin-opener-policy"] = "same-origin"
    return response


def render(template: str, status: int = 200, **context: Any) -> Response:
    html = _env.get_template(template).render(**context)
    return _headers(HTMLResponse(html, status_code=status))


def redirect(to: str) -> Response:
    return _headers(RedirectResponse(to, status_code=303))


@dataclass(frozen=True, slots=True)
class Ctx:
    request: Request
    st: AppState
    session: Session
    form: FormData | None

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        return render(
            template, status, csrf=self.session.csrf, path=self.request.url.path, **context
        )


Handler = Callable[[Ctx], Awaitable[Response]]


def sessions(st: AppState) -> Sessions:
    return Sessions(st.redis, st.settings.console_session_ttl)


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A console endpoint: session required (else redirect to login); a POST must carry
    the session's CSRF token in its form or the X-CSRF-Token header (else 403)."""

    async def endpoint(request: Request) -> Response:
        st: AppState = request.app.state.orbyt
        session = await sessions(st).get(request)
        if session is None:
            if request.headers.get("hx-request"):  # a page refreshing itself: reload to sign in
                return _headers(
                    Response(status_code=204, headers={"hx-redirect": "/console/login"})
                )
            return redirect("/console/login")
        form = None
        if request.method == "POST":
            form = await request.form()
            given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if not token_matches(session.csrf, given if isinstance(given, str) else None):
                return render("error.html", 403, message="Missing or invalid CSRF token.")
        try:
            return await handler(Ctx(request, st, session, form))
        except OrbytError as err:
            ctx = Ctx(request, st, session, form)
            return ctx.page("error.html", err.status, message=err.message)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


# ----------------------------------------------------------------------------- sign-in
@router.get("/login")
async def login_form(request: Request) -> Response:
    st: AppState = request.app.state.orbyt
    try:
        admin.configured_admin_key(st.settings)
    except OrbytError as err:  # say so now rather than after a try
        return _login_page(request, err.message, 200)
    return _login_page(request, "", 200)


def _login_page(request: Request, error: str, status: int) -> Response:
    token = new_token()
    response = render("login.html", status, login_token=token, error=error)
    set_login_cookie(response, request, token)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    st: AppState = request.app.state.orbyt
    form = await request.form()
    given = form.get("login_token")
    if not token_matches(
        request.cookies.get(LOGIN_COOKIE, ""), given if isinstance(given, str) else None
    ):
        return _login_page(request, "The sign-in form expired; please try again.", 403)
    key = form.get("admin_key")
    try:
        ok = admin.admin_key_matches(st.settings, key if isinstance(key, str) else "")
    except OrbytError as err:  # the admin key is not configured
        return _login_page(request, err.message, err.status)
    if not ok:
        return _login_page(request, "Incorrect admin key.", 401)
    session = await sessions(st).create()
    response = redirect("/console/keys")
    set_session_cookie(response, request, session, st.settings.console_session_ttl)
    return response


async def logout_page(ctx: Ctx) -> Response:
    await sessions(ctx.st).delete(ctx.session)
    response = redirect("/console/login")
    clear_session_cookie(response, ctx.request)
    return response


async def home(ctx: Ctx) -> Response:
    return redirect("/console/keys")


# ------------------------------------------------------------------------------- keys
async def keys_page(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    return ctx.page("keys.html", status, keys=await queries.keys(ctx.st), error=error)


def _fields(form: FormData | None, *names: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = form.get(name) if form is not None else None
        if isinstance(value, str) and value.strip() != "":
            out[name] = value.strip()
    return out


async def create_key(ctx: Ctx) -> Response:
    fields = _fields(ctx.form, "name", "rpm", "concurrency")
    fields["pool"] = ctx.form is not None and ctx.form.get("pool") == "on"
    try:
        body = admin.NewKey.model_validate(fields)
    except ValidationError as exc:
        return await keys_page(ctx, _problem(exc), 400)
    created = await admin.create_key(body, ctx.st)
    return ctx.page("key_created.html", key=created)


async def update_key(ctx: Ctx) -> Response:
    key_id = ctx.request.path_params["key_id"]
    fields = _fields(ctx.form, "rpm", "concurrency")
    fields["pool"] = ctx.form is not None and ctx.form.get("pool") == "on"
    try:
        body = admin.KeyChange.model_validate(fields)
    except ValidationError as exc:
        return await keys_page(ctx, _problem(exc), 400)
    await admin.update_key(key_id, body, ctx.st)
    return redirect("/console/keys")


async def revoke_key(ctx: Ctx) -> Response:
    await admin.revoke_key(ctx.request.path_params["key_id"], ctx.st)
    return redirect("/console/keys")


def _problem(exc: ValidationError) -> str:
    err = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "form"
    return f"{where}: {err['msg']}"


# ------------------------------------------------------------------------------ usage
def _query(ctx: Ctx) -> tuple[str | None, str | None, str]:
    params = ctx.request.query_params
    return params.get("from") or None, params.get("to") or None, params.get("group_by") or "key"


async def usage_page(ctx: Ctx) -> Response:
    start, end, group_by = _query(ctx)
    if group_by not in reports.GROUPS:
        group_by = "key"
    summary = await admin.summary(ctx.st, start, end, group_by)  # type: ignore[arg-type]
    daily = await admin.summary(ctx.st, start, end, "day")
    names = {k["id"]: k["name"] for k in await queries.keys(ctx.st)}
    return ctx.page(
        "usage.html",
        summary=summary,
        daily=daily["data"],
        groups=reports.GROUPS,
        names=names,
        start=summary["days"][0],
        end=summary["days"][-1],
    )


async def usage_csv(ctx: Ctx) -> Response:
    start, end, _ = _query(ctx)
    rows = await queries.usage_rows(ctx.st, reports.day_range(start, end))
    return _headers(admin.csv_response(rows))


# ----------------------------------------------------------------------------- routes
async def routes_page(ctx: Ctx) -> Response:
    return ctx.page("routes.html", health=await queries.routes(ctx.st))


# ---------------------------------------------------------------------------- batches
async def batches_page(ctx: Ctx) -> Response:
    return ctx.page("batches.html", batches=await queries.batches(ctx.st))


async def cancel_batch(ctx: Ctx) -> Response:
    await queries.cancel_batch(ctx.st, ctx.request.path_params["batch_id"])
    return redirect("/console/batches")


async def batch_file(ctx: Ctx) -> Response:
    batch_id, which = ctx.request.path_params["batch_id"], ctx.request.path_params["which"]
    if which not in ("output", "error"):
        return ctx.page("error.html", 404, message="Unknown batch file.")
    data = await queries.batch_file(ctx.st, batch_id, which)
    return _headers(admin.jsonl_response(batch_id, which, data))


_PAGES: list[tuple[str, Handler, str]] = [
    ("", home, "GET"),
    ("/", home, "GET"),
    ("/logout", logout_page, "POST"),
    ("/keys", keys_page, "GET"),
    ("/keys", create_key, "POST"),
    ("/keys/{key_id}/limits", update_key, "POST"),
    ("/keys/{key_id}/revoke", revoke_key, "POST"),
    ("/usage", usage_page, "GET"),
    ("/usage.csv", usage_csv, "GET"),
    ("/routes", routes_page, "GET"),
    ("/batches", batches_page, "GET"),
    ("/batches/{batch_id}/cancel", cancel_batch, "POST"),
    ("/batches/{batch_id}/{which}", batch_file, "GET"),
]
for _path, _handler, _method in _PAGES:
    router.add_api_route(_path, page(_handler), methods=[_method])

PATHS = [(router.prefix + p, m) for p, _, m in _PAGES]  # every page behind a session
