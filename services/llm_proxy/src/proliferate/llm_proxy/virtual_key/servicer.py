"""gRPC methods of virtual keys: thin adapters over `VirtualKeyService`."""

from __future__ import annotations

from typing import Any

from proliferate.kit.db import Database
from proliferate.kit.rpc import current_caller
from proliferate.llm_proxy.virtual_key import serial
from proliferate.llm_proxy.virtual_key.service import VirtualKeyService
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb


class VirtualKeyServicer:
    db: Database
    keys: VirtualKeyService
    base_url: str

    async def IssueVirtualKey(self, request: pb.IssueVirtualKeyRequest, context: Any) -> pb.IssuedVirtualKey:
        key_request = serial.key_request(request, current_caller().service)
        async with self.db.unit_of_work() as session:
            issued = await self.keys.issue(session, key_request)
        return serial.issued_virtual_key(issued, self.base_url)

    async def RevokeVirtualKeys(
        self, request: pb.RevokeVirtualKeysRequest, context: Any
    ) -> pb.RevokeVirtualKeysResponse:
        organization_id = serial.parse_uuid(request.organization_id, "organization_id")
        target, reason = serial.revoke_target(request), serial.revoke_reason(request)
        async with self.db.unit_of_work() as session:
            count = await self.keys.revoke(session, organization_id, target, reason)
        return pb.RevokeVirtualKeysResponse(revoked_count=count)

    async def GetVirtualKey(self, request: pb.GetVirtualKeyRequest, context: Any) -> pb.VirtualKeyInfo:
        organization_id = serial.parse_uuid(request.organization_id, "organization_id")
        key_id = serial.parse_uuid(request.virtual_key_id, "virtual_key_id")
        async with self.db.unit_of_work() as session:
            key = await self.keys.get(session, organization_id, key_id)
            return serial.virtual_key_info(key)
