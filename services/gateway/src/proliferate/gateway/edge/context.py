"""The edge's parts, built once per process by the gateway's bootstrap and kept in the app
state: the auth client, the authenticator with its cache, and the cache's invalidation."""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.js import JetStreamContext
from proliferate.gateway.edge.auth.client import AuthRpc
from proliferate.gateway.edge.authentication.authenticator import Authenticator
from proliferate.gateway.edge.authentication.cache import PrincipalCache
from proliferate.gateway.edge.authentication.invalidation import cache_invalidation
from proliferate.gateway.edge.authentication.tokens import JwksCache, TokenVerifier
from proliferate.kit import bus
from proliferate.kit.bus import EphemeralSubscription
from proliferate.kit.topology import STREAMS


@dataclass
class EdgeContext:
    auth: AuthRpc
    authenticator: Authenticator
    cache: PrincipalCache
    tokens: TokenVerifier
    app_url: str
    allowed_origins: frozenset[str]
    cookie_secure: bool
    js: JetStreamContext | None = None
    invalidation: EphemeralSubscription | None = field(default=None)

    @classmethod
    def build(
        cls,
        auth: AuthRpc,
        *,
        app_url: str,
        cors_origins: tuple[str, ...],
        cookie_secure: bool,
        cache_ttl_seconds: float,
        js: JetStreamContext | None,
        jwks_refetch_interval: float = 10.0,
    ) -> EdgeContext:
        cache = PrincipalCache(cache_ttl_seconds)
        tokens = TokenVerifier(JwksCache(auth.jwks, refetch_interval=jwks_refetch_interval))
        origins = frozenset({app_url.rstrip("/"), *(o.rstrip("/") for o in cors_origins)})
        return cls(
            auth,
            Authenticator(auth, cache, tokens),
            cache,
            tokens,
            app_url.rstrip("/"),
            origins,
            cookie_secure,
            js,
        )

    async def start(self) -> None:
        """Subscribe to the auth events before serving: without invalidation the cache could
        keep a revoked credential for its whole TTL, so a replica that cannot subscribe fails."""
        if self.js is None:
            return
        await bus.ensure_streams(self.js, STREAMS["auth"].specs("auth"))
        self.invalidation = cache_invalidation(self.js, self.cache)
        await self.invalidation.start()

    async def stop(self) -> None:
        if self.invalidation is not None:
            await self.invalidation.stop()
