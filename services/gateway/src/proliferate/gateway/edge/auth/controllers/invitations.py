"""`/v1/invitations/{token}`: what an invitation link opens, and the invitee's answer."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from proliferate.gateway.edge.auth import schemas as s
from proliferate.gateway.edge.auth import serial
from proliferate.gateway.edge.authentication.dependencies import Auth, Caller, edge_of
from proliferate.gateway.edge.routes import Tenancy, documented
from proliferate.protos.auth.v1 import auth_pb2 as pb


@get("/v1/invitations/{token:str}", operation_id="get_invitation_preview", **documented(Tenancy.PUBLIC))
async def get_invitation_preview(token: FromPath[str], auth: Auth) -> s.InvitationPreviewOut:
    return serial.invitation_preview(
        await auth("GetInvitationPreview", pb.InvitationToken(token=token[:512]))
    )


@post(
    "/v1/invitations/{token:str}/accept",
    operation_id="accept_invitation",
    status_code=200,
    **documented(Tenancy.USER),
)
async def accept_invitation(
    request: Request[Any, Any, Any], token: FromPath[str], principal: Caller, auth: Auth
) -> s.MemberOut:
    member = await auth("AcceptInvitation", pb.InvitationToken(token=token[:512]), principal=principal)
    edge_of(request).cache.drop_credential(principal.credential_id)  # the new org became the active one
    return serial.member(member)


@post(
    "/v1/invitations/{token:str}/reject",
    operation_id="reject_invitation",
    status_code=200,
    **documented(Tenancy.USER),
)
async def reject_invitation(token: FromPath[str], principal: Caller, auth: Auth) -> s.InvitationOut:
    return serial.invitation(
        await auth("RejectInvitation", pb.InvitationToken(token=token[:512]), principal=principal)
    )


ROUTES = [get_invitation_preview, accept_invitation, reject_invitation]
