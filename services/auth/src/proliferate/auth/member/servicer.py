from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.member import service
from proliferate.auth.rpc import ServicerBase
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class MemberServicer(ServicerBase):
    async def GetMembership(self, request: pb.GetMembershipRequest, context: Any) -> pb.Membership:
        async with self.uow() as session:
            role = await service.get_membership(session, request.user_id, request.organization_id)
        return pb.Membership(user_id=request.user_id, organization_id=request.organization_id, role=role)

    async def ListMembers(self, request: pb.OrganizationRef, context: Any) -> pb.ListMembersResponse:
        async with self.uow() as session:
            found = await service.list_members(session, current_principal(), request.organization_id)
        return pb.ListMembersResponse(members=[serial.member(m, u) for m, u in found])

    async def UpdateMemberRole(self, request: pb.UpdateMemberRoleRequest, context: Any) -> pb.Member:
        async with self.uow() as session:
            member, user = await service.update_member_role(
                session, current_principal(), request.organization_id, request.member_id, request.role
            )
        return serial.member(member, user)

    async def RemoveMember(self, request: pb.MemberRef, context: Any) -> Empty:
        async with self.uow() as session:
            await service.remove_member(
                session, current_principal(), request.organization_id, request.member_id
            )
        return Empty()

    async def LeaveOrganization(self, request: pb.OrganizationRef, context: Any) -> Empty:
        async with self.uow() as session:
            await service.leave_organization(session, current_principal(), request.organization_id)
        return Empty()
