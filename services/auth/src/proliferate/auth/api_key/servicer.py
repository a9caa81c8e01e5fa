from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.api_key import service
from proliferate.auth.rpc import ServicerBase
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class ApiKeyServicer(ServicerBase):
    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: Any) -> pb.CreatedApiKey:
        async with self.uow() as session:
            created = await service.create_api_key(
                session,
                self.ctx,
                current_principal(),
                name=request.name,
                expires_in_days=request.expires_in_days if request.HasField("expires_in_days") else None,
            )
        return pb.CreatedApiKey(api_key=serial.api_key(created.api_key), key=created.key)

    async def ListApiKeys(self, request: Empty, context: Any) -> pb.ListApiKeysResponse:
        async with self.uow() as session:
            keys = await service.list_api_keys(session, current_principal())
        return pb.ListApiKeysResponse(api_keys=[serial.api_key(k) for k in keys])

    async def RevokeApiKey(self, request: pb.ApiKeyRef, context: Any) -> pb.ApiKey:
        async with self.uow() as session:
            key = await service.revoke_api_key(session, self.ctx, current_principal(), request.api_key_id)
        return serial.api_key(key)
