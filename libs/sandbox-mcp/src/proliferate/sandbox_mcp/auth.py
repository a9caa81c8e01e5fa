"""The sandbox token check: `Authorization: Bearer <SANDBOX_MCP_AUTH_TOKEN>`, compared in constant time.

The token comes from `session.env` and is swapped when that file changes (RefreshCredentials, resume),
so an old token stops working within one poll interval.
"""

from __future__ import annotations

import hmac

from aiohttp import web


class TokenStore:
    def __init__(self) -> None:
        self._token: bytes | None = None

    def set(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def loaded(self) -> bool:
        return self._token is not None

    def check_header(self, header: str | None) -> bool:
        if self._token is None or not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self._token)

    def check_request(self, request: web.BaseRequest) -> bool:
        return self.check_header(request.headers.get("Authorization"))


def error_response(status: int, code: str, message: str, **details: object) -> web.Response:
    """The platform's error shape: `{"error": {"code", "message", "details"}}`."""
    return web.json_response({"error": {"code": code, "message": message, "details": details}}, status=status)


def unauthorized() -> web.Response:
    return error_response(401, "unauthorized", "a valid sandbox token is required")
