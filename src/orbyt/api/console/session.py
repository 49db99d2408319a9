"""Console sessions and CSRF tokens.

Signing in exchanges the admin key (compared in constant time, `api.routes.admin`) for a
random session id, sent back only as a cookie: HttpOnly, SameSite=Strict, Secure when the
request came over TLS (directly, or through a proxy uvicorn trusts), with the session's
lifetime as Max-Age. The state Redis keeps the session under the SHA-256 of its id, with a
TTL, so a Redis dump holds no usable cookie:

    orbyt:console:session:{sha256(id)}   hash  csrf, created   (PX = console_session_ttl)

Each session has its own CSRF token, put in every page's forms (hidden field) and in a
`<meta>` for htmx requests (`X-CSRF-Token`); every state-changing request must repeat it.
The login form itself is protected by a double-submit token: a short-lived cookie and the
same value in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "orbyt_console"
LOGIN_COOKIE = "orbyt_console_login"
LOGIN_TTL = 600  # seconds a login form stays valid
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
PATH = "/console"


def _redis_key(session_id: str) -> str:
    return "orbyt:console:session:" + hashlib.sha256(session_id.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token; an empty or missing one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str


class Sessions:
    def __init__(self, redis: Redis, ttl: float) -> None:
        self._redis = redis
        self.ttl = ttl

    async def create(self) -> Session:
        session = Session(new_token(), new_token())
        name = _redis_key(session.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, mapping={"csrf": session.csrf, "created": int(time.time())})
            pipe.pexpire(name, int(self.ttl * 1000))
            await pipe.execute()
        return session

    async def get(self, request: Request) -> Session | None:
        session_id = request.cookies.get(COOKIE)
        if not session_id or len(session_id) > 128:
            return None
        csrf = await self._redis.hget(_redis_key(session_id), "csrf")  # type: ignore[misc]
        return Session(session_id, csrf.decode()) if csrf else None

    async def delete(self, session: Session) -> None:
        await self._redis.delete(_redis_key(session.id))


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, session: Session, ttl: float) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(ttl),
        path=PATH,
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=PATH, secure=secure(request), samesite="strict")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, secure=secure(request), httponly=True, samesite="strict"
    )


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_TTL,
        path=PATH,
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )
