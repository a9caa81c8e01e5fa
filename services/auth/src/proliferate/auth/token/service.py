"""Access tokens (1 h, Bearer for clients without the cookie) and sandbox tokens (one per
sandbox boot, `sid` + `jti`), both verified locally by the gateway with the JWKS (§4.4)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from proliferate.auth.context import AuthContext
from proliferate.auth.errors import forbidden, invalid
from proliferate.auth.token.signing import AUDIENCE, ISSUER
from proliferate.kit.principal import Principal, PrincipalKind

ACCESS_TOKEN_TTL = timedelta(hours=1)
SANDBOX_TOKEN_MAX_TTL = timedelta(days=7)


@dataclass(frozen=True)
class SignedToken:
    token: str
    expires_at: datetime
    jti: str


def _sign(ctx: AuthContext, ttl: timedelta, claims: dict[str, object]) -> SignedToken:
    now = ctx.clock.now()
    jti = str(uuid.uuid4())
    expires_at = now + ttl
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": jti,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        **claims,
    }
    return SignedToken(ctx.signing.sign(body), expires_at, jti)


def issue_access_token(ctx: AuthContext, principal: Principal) -> SignedToken:
    if principal.kind is not PrincipalKind.USER:
        raise forbidden("access tokens are issued to signed-in users only")
    return _sign(
        ctx,
        ACCESS_TOKEN_TTL,
        {
            "sub": principal.user_id,
            "typ": "access",
            "org": principal.organization_id,
            "role": principal.role,
            "imp": principal.impersonator_user_id,
            "cid": principal.credential_id,  # the sign-in it was minted from
            "email": principal.email,
            "adm": principal.is_super_admin,
        },
    )


def issue_sandbox_token(
    ctx: AuthContext, session_id: str, organization_id: str, ttl_seconds: int
) -> SignedToken:
    for field, value in (("session_id", session_id), ("organization_id", organization_id)):
        try:
            uuid.UUID(value)
        except ValueError:
            raise invalid(field, "must be an id") from None
    ttl = timedelta(seconds=ttl_seconds) if ttl_seconds else SANDBOX_TOKEN_MAX_TTL
    if not timedelta(seconds=1) <= ttl <= SANDBOX_TOKEN_MAX_TTL:
        raise invalid("ttl_seconds", "must be 1 s to 7 days")
    return _sign(ctx, ttl, {"sub": session_id, "typ": "sandbox", "org": organization_id, "sid": session_id})
