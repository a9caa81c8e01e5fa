"""Credential → `Principal`, through the cache, auth's `Authenticate` (2 s) or the JWKS."""

from __future__ import annotations

from proliferate.gateway.edge.auth.client import AuthRpc
from proliferate.gateway.edge.authentication.cache import PrincipalCache
from proliferate.gateway.edge.authentication.credentials import Credential, CredentialKind
from proliferate.gateway.edge.authentication.principal import principal_of
from proliferate.gateway.edge.authentication.tokens import TokenVerifier
from proliferate.kit.errors import DomainError, ErrorKind, RemoteError, Unauthenticated, Unavailable
from proliferate.kit.principal import Principal
from proliferate.protos.auth.v1 import auth_pb2 as pb

AUTHENTICATE_DEADLINE_SECONDS = 2.0
_AUTH_ANSWERS = frozenset({ErrorKind.UNAUTHENTICATED, ErrorKind.PERMISSION_DENIED, ErrorKind.NOT_FOUND})


def auth_unavailable() -> Unavailable:
    return Unavailable("authentication is unavailable right now; try again shortly", code="auth_unavailable")


class Authenticator:
    def __init__(
        self,
        rpc: AuthRpc,
        cache: PrincipalCache,
        tokens: TokenVerifier,
        deadline: float = AUTHENTICATE_DEADLINE_SECONDS,
    ) -> None:
        self.rpc = rpc
        self.cache = cache
        self.tokens = tokens
        self.deadline = deadline

    async def principal(
        self, credential: Credential, requested_organization_id: str, client: pb.ClientInfo
    ) -> Principal:
        try:
            if credential.kind is CredentialKind.ACCESS_TOKEN:
                return await self.tokens.access_principal(credential.value, requested_organization_id)
            return await self._authenticate(credential, requested_organization_id, client)
        except RemoteError as exc:
            raise _refusal(exc) from None

    async def _authenticate(
        self, credential: Credential, requested_organization_id: str, client: pb.ClientInfo
    ) -> Principal:
        key = credential.cache_key(requested_organization_id)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        generation = self.cache.generation
        kind = (
            pb.AuthenticateRequest.API_KEY
            if credential.kind is CredentialKind.API_KEY
            else pb.AuthenticateRequest.SIGN_IN
        )
        reply = await self.rpc(
            "Authenticate",
            pb.AuthenticateRequest(
                credential=credential.value,
                kind=kind,
                client=client,
                requested_organization_id=requested_organization_id,
            ),
            timeout=self.deadline,
        )
        principal = principal_of(reply)
        self.cache.put(key, principal, generation)
        return principal


def _refusal(exc: RemoteError) -> DomainError:
    """Auth's answer when it refused the credential; anything else fails closed with 503."""
    if exc.kind in _AUTH_ANSWERS:
        return exc
    if exc.kind is ErrorKind.INVALID_ARGUMENT:
        return Unauthenticated("the credential is not valid")
    return auth_unavailable()
