"""The auth service as the edge calls it: the service credential carries the authenticated
`Principal`; every call has a deadline."""

from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.kit.principal import Principal
from proliferate.kit.rpc import ServiceClient
from proliferate.protos.auth.v1 import auth_pb2_grpc

DEADLINE_SECONDS = 10.0


class AuthRpc:
    def __init__(self, client: ServiceClient, deadline: float = DEADLINE_SECONDS) -> None:
        self.client = client
        self.stub = auth_pb2_grpc.AuthServiceStub(client.channel)
        self.deadline = deadline

    async def __call__(
        self,
        method: str,
        request: Any = None,
        *,
        principal: Principal | None = None,
        timeout: float | None = None,
    ) -> Any:
        return await self.client.call(
            getattr(self.stub, method),
            request if request is not None else Empty(),
            principal=principal,
            timeout=timeout or self.deadline,
        )

    async def jwks(self) -> list[dict[str, str]]:
        reply = await self("GetJwks", timeout=2.0)
        return [{"kid": k.kid, "kty": k.kty, "crv": k.crv, "x": k.x} for k in reply.keys]
