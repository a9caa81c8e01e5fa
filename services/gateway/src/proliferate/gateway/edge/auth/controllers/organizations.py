"""`/v1/orgs/*`: organizations, their members and their invitations."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody
from proliferate.gateway.edge.auth import schemas as s
from proliferate.gateway.edge.auth import serial
from proliferate.gateway.edge.authentication.dependencies import Auth, Caller, edge_of
from proliferate.gateway.edge.routes import Tenancy, documented
from proliferate.protos.auth.v1 import auth_pb2 as pb


@get("/v1/orgs", operation_id="list_organizations", **documented(Tenancy.USER))
async def list_organizations(principal: Caller, auth: Auth) -> s.OrganizationsOut:
    reply = await auth("ListMyOrganizations", principal=principal)
    return s.OrganizationsOut(organizations=[serial.organization(o) for o in reply.organizations])


@post("/v1/orgs", operation_id="create_organization", status_code=201, **documented(Tenancy.USER))
async def create_organization(
    request: Request[Any, Any, Any], data: JSONBody[s.OrganizationCreateBody], principal: Caller, auth: Auth
) -> s.OrganizationOut:
    message = pb.CreateOrganizationRequest(name=data.name)
    if data.slug is not None:
        message.slug = data.slug
    created = await auth("CreateOrganization", message, principal=principal)
    edge_of(request).cache.drop_credential(principal.credential_id)  # it became the active org
    return serial.organization(created)


@get("/v1/orgs/domain-suggestions", operation_id="get_domain_suggestions", **documented(Tenancy.USER))
async def get_domain_suggestions(principal: Caller, auth: Auth) -> s.DomainSuggestionsOut:
    reply = await auth("GetDomainSuggestions", principal=principal)
    return s.DomainSuggestionsOut(domains=list(reply.domains))


@get("/v1/orgs/{org_id:str}", operation_id="get_organization", **documented(Tenancy.ORG_PATH))
async def get_organization(org_id: FromPath[str], principal: Caller, auth: Auth) -> s.OrganizationOut:
    return serial.organization(
        await auth("GetOrganization", pb.OrganizationRef(organization_id=org_id), principal=principal)
    )


@patch("/v1/orgs/{org_id:str}", operation_id="update_organization", **documented(Tenancy.ORG_PATH))
async def update_organization(
    org_id: FromPath[str], data: JSONBody[s.OrganizationUpdateBody], principal: Caller, auth: Auth
) -> s.OrganizationOut:
    request = pb.UpdateOrganizationRequest(organization_id=org_id)
    for field in ("name", "slug", "logo_url"):
        value = getattr(data, field)
        if value is not None:
            setattr(request, field, value)
    return serial.organization(await auth("UpdateOrganization", request, principal=principal))


@put(
    "/v1/orgs/{org_id:str}/allowed-domains",
    operation_id="set_allowed_domains",
    **documented(Tenancy.ORG_PATH),
)
async def set_allowed_domains(
    org_id: FromPath[str], data: JSONBody[s.AllowedDomainsBody], principal: Caller, auth: Auth
) -> s.OrganizationOut:
    reply = await auth(
        "SetAllowedDomains",
        pb.SetAllowedDomainsRequest(organization_id=org_id, domains=data.domains),
        principal=principal,
    )
    return serial.organization(reply)


@get("/v1/orgs/{org_id:str}/members", operation_id="list_members", **documented(Tenancy.ORG_PATH))
async def list_members(org_id: FromPath[str], principal: Caller, auth: Auth) -> s.MembersOut:
    reply = await auth("ListMembers", pb.OrganizationRef(organization_id=org_id), principal=principal)
    return s.MembersOut(members=[serial.member(m) for m in reply.members])


@patch(
    "/v1/orgs/{org_id:str}/members/{member_id:str}",
    operation_id="update_member_role",
    **documented(Tenancy.ORG_PATH),
)
async def update_member_role(
    org_id: FromPath[str],
    member_id: FromPath[str],
    data: JSONBody[s.MemberRoleBody],
    principal: Caller,
    auth: Auth,
) -> s.MemberOut:
    request = pb.UpdateMemberRoleRequest(organization_id=org_id, member_id=member_id, role=data.role)
    return serial.member(await auth("UpdateMemberRole", request, principal=principal))


@delete(
    "/v1/orgs/{org_id:str}/members/{member_id:str}",
    operation_id="remove_member",
    **documented(Tenancy.ORG_PATH),
)
async def remove_member(
    org_id: FromPath[str], member_id: FromPath[str], principal: Caller, auth: Auth
) -> None:
    await auth("RemoveMember", pb.MemberRef(organization_id=org_id, member_id=member_id), principal=principal)


@post(
    "/v1/orgs/{org_id:str}/leave",
    operation_id="leave_organization",
    status_code=204,
    **documented(Tenancy.ORG_PATH),
)
async def leave_organization(org_id: FromPath[str], principal: Caller, auth: Auth) -> None:
    await auth("LeaveOrganization", pb.OrganizationRef(organization_id=org_id), principal=principal)


@get("/v1/orgs/{org_id:str}/invitations", operation_id="list_invitations", **documented(Tenancy.ORG_PATH))
async def list_invitations(org_id: FromPath[str], principal: Caller, auth: Auth) -> s.InvitationsOut:
    reply = await auth("ListInvitations", pb.OrganizationRef(organization_id=org_id), principal=principal)
    return s.InvitationsOut(invitations=[serial.invitation(i) for i in reply.invitations])


@post(
    "/v1/orgs/{org_id:str}/invitations",
    operation_id="create_invitation",
    status_code=201,
    **documented(Tenancy.ORG_PATH),
)
async def create_invitation(
    org_id: FromPath[str], data: JSONBody[s.InvitationCreateBody], principal: Caller, auth: Auth
) -> s.CreatedInvitationOut:
    request = pb.CreateInvitationRequest(
        organization_id=org_id, email=data.email, role=data.role, resend=data.resend
    )
    reply = await auth("CreateInvitation", request, principal=principal)
    return s.CreatedInvitationOut(
        invitation=serial.invitation(reply.invitation),
        token=serial.opt(reply.token),
        link=serial.opt(reply.link),
    )


@delete(
    "/v1/orgs/{org_id:str}/invitations/{invitation_id:str}",
    operation_id="cancel_invitation",
    **documented(Tenancy.ORG_PATH),
)
async def cancel_invitation(
    org_id: FromPath[str], invitation_id: FromPath[str], principal: Caller, auth: Auth
) -> None:
    await auth(
        "CancelInvitation",
        pb.InvitationRef(organization_id=org_id, invitation_id=invitation_id),
        principal=principal,
    )


ROUTES = [
    list_organizations,
    create_organization,
    get_domain_suggestions,
    get_organization,
    update_organization,
    set_allowed_domains,
    list_members,
    update_member_role,
    remove_member,
    leave_organization,
    list_invitations,
    create_invitation,
    cancel_invitation,
]
