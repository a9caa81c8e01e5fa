from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.admin import service
from proliferate.auth.rpc import ServicerBase
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class AdminServicer(ServicerBase):
    async def GetAdminStatus(self, request: Empty, context: Any) -> pb.AdminStatus:
        async with self.uow() as session:
            view = await service.admin_status(session, self.ctx, current_principal())
        return serial.admin_status(view)

    async def AdminListUsers(self, request: pb.AdminListRequest, context: Any) -> pb.AdminListUsersResponse:
        async with self.uow() as session:
            users, cursor = await service.list_users(
                session, self.ctx, current_principal(), request.cursor, request.limit, request.q
            )
        return pb.AdminListUsersResponse(users=serial.users(users), next_cursor=cursor)

    async def AdminListOrganizations(
        self, request: pb.AdminListRequest, context: Any
    ) -> pb.AdminListOrganizationsResponse:
        async with self.uow() as session:
            orgs, cursor = await service.list_organizations(
                session, self.ctx, current_principal(), request.cursor, request.limit, request.q
            )
        return pb.AdminListOrganizationsResponse(
            organizations=[serial.organization(o) for o in orgs], next_cursor=cursor
        )

    async def StartImpersonation(self, request: pb.StartImpersonationRequest, context: Any) -> pb.AdminStatus:
        async with self.uow() as session:
            view = await service.start_impersonation(
                session, self.ctx, current_principal(), request.user_id, request.organization_id
            )
        return serial.admin_status(view)

    async def SwitchImpersonatedOrganization(
        self, request: pb.SwitchImpersonatedOrganizationRequest, context: Any
    ) -> pb.AdminStatus:
        async with self.uow() as session:
            view = await service.switch_organization(
                session, self.ctx, current_principal(), request.organization_id
            )
        return serial.admin_status(view)

    async def StopImpersonation(self, request: Empty, context: Any) -> pb.AdminStatus:
        async with self.uow() as session:
            view = await service.stop_impersonation(session, self.ctx, current_principal())
        return serial.admin_status(view)
