"""`/v1/admin/*`: super-admin status, listings and impersonation."""

from __future__ import annotations

from typing import Annotated

from litestar import delete, get, post, put
from litestar.params import JSONBody, QueryParameter
from proliferate.gateway.edge.auth import schemas as s
from proliferate.gateway.edge.auth import serial
from proliferate.gateway.edge.authentication.dependencies import Auth, Caller
from proliferate.gateway.edge.routes import Tenancy, documented
from proliferate.protos.auth.v1 import auth_pb2 as pb

Limit = Annotated[int, QueryParameter(ge=1, le=100)]
Cursor = Annotated[str, QueryParameter(max_length=64)]
Query = Annotated[str, QueryParameter(max_length=200)]


@get("/v1/admin/status", operation_id="get_admin_status", **documented(Tenancy.USER))
async def get_admin_status(principal: Caller, auth: Auth) -> s.AdminStatusOut:
    return serial.admin_status(await auth("GetAdminStatus", principal=principal))


@get("/v1/admin/users", operation_id="admin_list_users", **documented(Tenancy.PLATFORM))
async def admin_list_users(
    principal: Caller, auth: Auth, cursor: Cursor = "", limit: Limit = 25, q: Query = ""
) -> s.AdminUsersOut:
    reply = await auth(
        "AdminListUsers", pb.AdminListRequest(cursor=cursor, limit=limit, q=q), principal=principal
    )
    return s.AdminUsersOut(
        users=[serial.user(u) for u in reply.users], next_cursor=serial.opt(reply.next_cursor)
    )


@get("/v1/admin/organizations", operation_id="admin_list_organizations", **documented(Tenancy.PLATFORM))
async def admin_list_organizations(
    principal: Caller, auth: Auth, cursor: Cursor = "", limit: Limit = 25, q: Query = ""
) -> s.AdminOrganizationsOut:
    reply = await auth(
        "AdminListOrganizations", pb.AdminListRequest(cursor=cursor, limit=limit, q=q), principal=principal
    )
    return s.AdminOrganizationsOut(
        organizations=[serial.organization(o) for o in reply.organizations],
        next_cursor=serial.opt(reply.next_cursor),
    )


@post(
    "/v1/admin/impersonation",
    operation_id="start_impersonation",
    status_code=200,
    **documented(Tenancy.PLATFORM),
)
async def start_impersonation(
    data: JSONBody[s.ImpersonationBody], principal: Caller, auth: Auth
) -> s.AdminStatusOut:
    request = pb.StartImpersonationRequest(user_id=data.user_id, organization_id=data.organization_id)
    return serial.admin_status(await auth("StartImpersonation", request, principal=principal))


@put(
    "/v1/admin/impersonation/organization",
    operation_id="switch_impersonated_organization",
    **documented(Tenancy.PLATFORM),
)
async def switch_impersonated_organization(
    data: JSONBody[s.ImpersonatedOrganizationBody], principal: Caller, auth: Auth
) -> s.AdminStatusOut:
    request = pb.SwitchImpersonatedOrganizationRequest(organization_id=data.organization_id)
    return serial.admin_status(await auth("SwitchImpersonatedOrganization", request, principal=principal))


@delete("/v1/admin/impersonation", operation_id="stop_impersonation", **documented(Tenancy.PLATFORM))
async def stop_impersonation(principal: Caller, auth: Auth) -> None:
    await auth("StopImpersonation", principal=principal)


ROUTES = [
    get_admin_status,
    admin_list_users,
    admin_list_organizations,
    start_impersonation,
    switch_impersonated_organization,
    stop_impersonation,
]
