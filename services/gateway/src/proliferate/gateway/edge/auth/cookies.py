"""The sign-in cookie (auth.md §4.4): httpOnly, SameSite=Lax, Path=/, Secure except on plain
http in dev/test; it lives exactly as long as the sign-in."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.datastructures import Cookie
from proliferate.gateway.edge.authentication.credentials import SIGN_IN_COOKIE


def sign_in_cookie(token: str, expires_at: datetime | None, secure: bool) -> Cookie:
    max_age = int((expires_at - datetime.now(UTC)).total_seconds()) if expires_at else 7 * 86400
    return Cookie(
        key=SIGN_IN_COOKIE,
        value=token,
        max_age=max(max_age, 0),
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )


def cleared_cookie(secure: bool) -> Cookie:
    return Cookie(
        key=SIGN_IN_COOKIE, value="", max_age=0, path="/", httponly=True, secure=secure, samesite="lax"
    )
