from __future__ import annotations

from typing import Any

from proliferate.auth import serial
from proliferate.auth.invitation import service
from proliferate.auth.rpc import ServicerBase, accepted
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class InvitationServicer(ServicerBase):
    async def CreateInvitation(
        self, request: pb.CreateInvitationRequest, context: Any
    ) -> pb.CreateInvitationResponse:
        async with self.uow() as session:
            created = await service.create_invitation(
                session,
                self.ctx,
                current_principal(),
                request.organization_id,
                email=request.email,
                role=request.role,
                resend=request.resend,
            )
        return pb.CreateInvitationResponse(
            invitation=serial.invitation(created.invitation),
            token=created.token or "",
            link=created.link or "",
        )

    async def ListInvitations(self, request: pb.OrganizationRef, context: Any) -> pb.ListInvitationsResponse:
        async with self.uow() as session:
            found = await service.list_invitations(session, current_principal(), request.organization_id)
        return pb.ListInvitationsResponse(invitations=[serial.invitation(i) for i in found])

    async def CancelInvitation(self, request: pb.InvitationRef, context: Any) -> pb.Invitation:
        async with self.uow() as session:
            outcome = await service.cancel_invitation(
                session, self.ctx, current_principal(), request.organization_id, request.invitation_id
            )
        return serial.invitation(accepted(outcome))

    async def GetInvitationPreview(self, request: pb.InvitationToken, context: Any) -> pb.InvitationPreview:
        async with self.uow() as session:
            outcome = await service.preview_invitation(session, self.ctx, request.token)
        return serial.invitation_preview(accepted(outcome))

    async def AcceptInvitation(self, request: pb.InvitationToken, context: Any) -> pb.Member:
        async with self.uow() as session:
            outcome = await service.accept_invitation(session, self.ctx, current_principal(), request.token)
        member, user = accepted(outcome)
        return serial.member(member, user)

    async def RejectInvitation(self, request: pb.InvitationToken, context: Any) -> pb.Invitation:
        async with self.uow() as session:
            outcome = await service.reject_invitation(session, self.ctx, current_principal(), request.token)
        return serial.invitation(accepted(outcome))
