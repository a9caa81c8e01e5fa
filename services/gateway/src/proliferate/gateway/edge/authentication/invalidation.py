"""Every replica drops cached principals on the auth events of gateway.md §4.3 — plus
`sign_in.updated` (a sign-in switched organization) — through an ephemeral ordered
subscription (no durable state: a replica that starts has an empty cache)."""

from __future__ import annotations

from nats.js import JetStreamContext
from proliferate.gateway.edge.authentication.cache import PrincipalCache
from proliferate.kit.bus import EphemeralSubscription, Event, on_each
from proliferate.kit.logs import get_logger
from proliferate.protos.events.v1 import auth_pb2 as ev

log = get_logger("proliferate.gateway.authentication")

AUTH_STREAM = "PROLIFERATE_AUTH"


def cache_invalidation(js: JetStreamContext, cache: PrincipalCache) -> EphemeralSubscription:
    async def sign_in_revoked(event: Event[ev.SignInRevoked]) -> None:
        dropped = cache.drop_credential(event.payload.sign_in_id)
        log.debug("auth_cache_dropped", reason="sign_in.revoked", entries=dropped)

    async def sign_in_updated(event: Event[ev.SignInUpdated]) -> None:
        dropped = cache.drop_credential(event.payload.sign_in_id)
        log.debug("auth_cache_dropped", reason="sign_in.updated", entries=dropped)

    async def api_key_revoked(event: Event[ev.ApiKeyRevoked]) -> None:
        dropped = cache.drop_credential(event.payload.api_key_id)
        log.debug("auth_cache_dropped", reason="api_key.revoked", entries=dropped)

    async def member_changed(event: Event[ev.MemberUpdated] | Event[ev.MemberRemoved]) -> None:
        dropped = cache.drop_user(event.payload.user_id)
        log.debug("auth_cache_dropped", reason=event.subject, entries=dropped)

    async def impersonation_changed(
        event: Event[ev.ImpersonationStarted] | Event[ev.ImpersonationStopped],
    ) -> None:
        dropped = cache.drop_user(event.payload.actor_user_id)
        log.debug("auth_cache_dropped", reason=event.subject, entries=dropped)

    handlers = (
        on_each("proliferate.auth.sign_in.revoked", ev.SignInRevoked)(sign_in_revoked),
        on_each("proliferate.auth.sign_in.updated", ev.SignInUpdated)(sign_in_updated),
        on_each("proliferate.auth.api_key.revoked", ev.ApiKeyRevoked)(api_key_revoked),
        on_each("proliferate.auth.member.updated", ev.MemberUpdated)(member_changed),
        on_each("proliferate.auth.member.removed", ev.MemberRemoved)(member_changed),
        on_each("proliferate.auth.impersonation.started", ev.ImpersonationStarted)(impersonation_changed),
        on_each("proliferate.auth.impersonation.stopped", ev.ImpersonationStopped)(impersonation_changed),
    )
    return EphemeralSubscription(js, AUTH_STREAM, "proliferate.auth.>", handlers, name="gateway-auth-cache")
