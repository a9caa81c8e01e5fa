from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.rpc import ServicerBase
from proliferate.auth.token import service
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class TokenServicer(ServicerBase):
    async def IssueAccessToken(self, request: Empty, context: Any) -> pb.Token:
        return serial.token(service.issue_access_token(self.ctx, current_principal()))

    async def IssueSandboxToken(self, request: pb.IssueSandboxTokenRequest, context: Any) -> pb.Token:
        return serial.token(
            service.issue_sandbox_token(
                self.ctx, request.session_id, request.organization_id, request.ttl_seconds
            )
        )

    async def GetJwks(self, request: Empty, context: Any) -> pb.Jwks:
        return pb.Jwks(keys=[pb.Jwk(**key) for key in self.ctx.signing.jwks()])
