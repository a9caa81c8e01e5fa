"""What route handlers declare: `principal: Principal` (authenticated, or 401/403/503 before
the handler runs) and `auth: AuthRpc`. The origin check refuses state-changing requests a
browser sent from another site with the sign-in cookie (CSRF)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from proliferate.gateway.edge.auth.client import AuthRpc
from proliferate.gateway.edge.authentication.credentials import ORG_HEADER, credential_of
from proliferate.kit.errors import PermissionDenied, Unauthenticated
from proliferate.kit.principal import Principal
from proliferate.protos.auth.v1 import auth_pb2 as pb

if TYPE_CHECKING:
    from proliferate.gateway.edge.context import EdgeContext

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def edge_of(request: Request[Any, Any, Any]) -> EdgeContext:
    edge: EdgeContext = request.app.state.edge
    return edge


def client_info(request: Request[Any, Any, Any]) -> pb.ClientInfo:
    return pb.ClientInfo(
        ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:512],
    )


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    credential = credential_of(request)
    if credential is None:
        raise Unauthenticated("sign in, or send `Authorization: Bearer <token>`")
    requested = request.headers.get(ORG_HEADER, "").strip()[:64]
    return await edge_of(request).authenticator.principal(credential, requested, client_info(request))


async def provide_auth(request: Request[Any, Any, Any]) -> AuthRpc:
    return edge_of(request).auth


async def check_origin(request: Request[Any, Any, Any]) -> None:
    """A cross-site form or script cannot use the cookie to change anything (auth.md §7)."""
    if request.method in SAFE_METHODS or "authorization" in request.headers:
        return
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") not in edge_of(request).allowed_origins:
        raise PermissionDenied(
            "this request comes from an origin that may not use the sign-in", code="origin_not_allowed"
        )


DEPENDENCIES = {"principal": Provide(provide_principal), "auth": Provide(provide_auth)}

# What handlers declare: `principal: Caller` (authenticated before the handler runs), `auth: Auth`.
Caller = NamedDependency[Principal]
Auth = NamedDependency[AuthRpc]
