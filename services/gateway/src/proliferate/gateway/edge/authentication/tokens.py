"""Local verification of auth's signed tokens (auth.md §4.4) with its JWKS: access tokens on
every route, sandbox tokens on the session routes that accept them.

The JWKS is cached 5 minutes and refetched when a token names an unknown `kid` (at most once
per `refetch_interval`, so made-up kids cannot hammer auth).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from proliferate.kit.errors import PermissionDenied, Unauthenticated
from proliferate.kit.principal import Principal, PrincipalKind

ALGORITHM = "Ed25519"
ISSUER = "proliferate-auth"
AUDIENCE = "gateway"
FetchJwks = Callable[[], Awaitable[list[dict[str, str]]]]


class JwksCache:
    def __init__(
        self,
        fetch: FetchJwks,
        ttl_seconds: float = 300.0,
        refetch_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.ttl = ttl_seconds
        self.refetch_interval = refetch_interval
        self.clock = clock
        self._keys: dict[str, OKPKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> OKPKey | None:
        now = self.clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self.ttl
        unknown = kid not in self._keys and (
            self._fetched_at is None or now - self._fetched_at >= self.refetch_interval
        )
        if stale or unknown:
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            keys = await self.fetch()
            self._keys = {
                k["kid"]: OKPKey.import_key({"kty": k["kty"], "crv": k["crv"], "x": k["x"]})
                for k in keys
                if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"
            }
            self._fetched_at = self.clock()


class TokenVerifier:
    def __init__(self, jwks: JwksCache, clock: Callable[[], float] = time.time) -> None:
        self.jwks = jwks
        self.clock = clock

    async def claims(self, token: str, typ: str) -> dict[str, Any]:
        """The verified claims of a token of type `typ`; `Unauthenticated` for anything else."""
        try:
            header = jws.extract_compact(token.encode()).protected
            key = await self.jwks.key(str(header.get("kid", "")))
            if key is None or header.get("alg") != ALGORITHM:
                raise Unauthenticated("the token is signed with an unknown key")
            claims = dict(jwt.decode(token, key, algorithms=[ALGORITHM]).claims)
        except (JoseError, ValueError, UnicodeError):
            raise Unauthenticated("the token is not valid") from None
        now = self.clock()
        exp, iat = claims.get("exp"), claims.get("iat", 0)
        if claims.get("iss") != ISSUER or claims.get("aud") != AUDIENCE or claims.get("typ") != typ:
            raise Unauthenticated("the token is not valid here")
        if (
            not isinstance(exp, int | float)
            or exp <= now
            or not isinstance(iat, int | float)
            or iat > now + 60
        ):
            raise Unauthenticated("the token has expired")
        return claims

    async def access_principal(self, token: str, requested_organization_id: str) -> Principal:
        claims = await self.claims(token, "access")
        org = str(claims.get("org") or "")
        if requested_organization_id and requested_organization_id != org:
            raise PermissionDenied("an access token acts only in the organization it was issued for")
        return Principal(
            kind=PrincipalKind.USER,
            user_id=str(claims.get("sub", "")),
            organization_id=org,
            role=str(claims.get("role") or ""),
            credential_id=str(claims.get("cid") or ""),
            impersonator_user_id=str(claims.get("imp") or ""),
            email=str(claims.get("email") or ""),
            is_super_admin=bool(claims.get("adm")),
        )

    async def sandbox_principal(
        self, token: str, session_id: str, current_jti: Callable[[str], Awaitable[str | None]]
    ) -> Principal:
        """A sandbox token is good only for its own session (else 403), before `exp`, and only
        while it is the token of the session's latest boot (a new boot supersedes it)."""
        claims = await self.claims(token, "sandbox")
        if claims.get("sid") != session_id:
            raise PermissionDenied("this sandbox token belongs to another session")
        jti = str(claims.get("jti") or "")
        if not jti or await current_jti(session_id) != jti:
            raise Unauthenticated("this sandbox token was superseded by a newer boot")
        return Principal(
            kind=PrincipalKind.SANDBOX,
            organization_id=str(claims.get("org") or ""),
            session_id=session_id,
            credential_id=jti,
        )
